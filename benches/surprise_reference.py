"""Reference recommenders for `kmt-bench recommend --surprise PYTHON`.

Runs the Python library Surprise (scikit-surprise) with default settings on
MovieLens 100K's standard splits. It is a small server driven by kmt-bench so
that both systems are measured in one run, interleaved split by split: each
line read from stdin is `<split> <model>` (for example `u1 SVD`), and the
answer is one JSON line on stdout:

    {"split": "u1", "model": "SVD", "rmse": ..., "mae": ..., "fit_s": ..., "test_s": ...}

`fit_s` times `algo.fit(trainset)` alone (as kmt-bench times our training);
`test_s` times predicting the test ratings. Models: BaselineOnly,
KNNBaseline, SVD, all with Surprise's defaults (KNNBaseline: k=40,
MSD similarity, ALS baselines; SVD: 100 factors, 20 epochs, lr 0.005,
reg 0.02, seeded with random_state=0 for repeatability).
"""

import json
import os
import sys
import time

from surprise import SVD, BaselineOnly, Dataset, KNNBaseline, Reader, accuracy

MODELS = {
    "BaselineOnly": lambda: BaselineOnly(verbose=False),
    "KNNBaseline": lambda: KNNBaseline(verbose=False),
    "SVD": lambda: SVD(random_state=0),
}


def main() -> None:
    data_dir = sys.argv[1]
    reader = Reader("ml-100k")
    cache = {}
    print(json.dumps({"ready": True, "surprise": __import__("surprise").__version__}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        split, name = line.split()
        if split not in cache:
            folds = Dataset.load_from_folds(
                [(os.path.join(data_dir, f"{split}.base"), os.path.join(data_dir, f"{split}.test"))],
                reader=reader,
            )
            cache.clear()
            cache[split] = next(iter(_splits(folds)))
        trainset, testset = cache[split]
        algo = MODELS[name]()
        t0 = time.perf_counter()
        algo.fit(trainset)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        predictions = algo.test(testset)
        test_s = time.perf_counter() - t0
        out = {
            "split": split,
            "model": name,
            "rmse": accuracy.rmse(predictions, verbose=False),
            "mae": accuracy.mae(predictions, verbose=False),
            "fit_s": fit_s,
            "test_s": test_s,
        }
        print(json.dumps(out), flush=True)


def _splits(folds):
    from surprise.model_selection import PredefinedKFold

    return PredefinedKFold().split(folds)


if __name__ == "__main__":
    main()
