#!/usr/bin/env python3
"""Reference rankers for `kmt-bench relevance`, run on a BEIR set in the same
benchmark run, scored with the same metrics as the Rust program (nDCG@10 with
linear gains, recall@100, MRR@10, averaged over the judged queries). Prints
JSON.

- `bm25`: bm25s with an English Snowball stemmer (PyStemmer).
- `dense`: plain dense retrieval with all-MiniLM-L6-v2, written here from
  scratch in numpy over the same safetensors weights and tokenizer.json (no
  KMT code, no candle): one vector per passage (title + text, at most 256
  tokens, mean pooling, L2 norm), exact cosine search. It checks KMT's
  semantic ranker end to end and is the "dense" reference of issue 3.

Usage: relevance_reference.py bm25|dense SET_DIR [MODEL_DIR] > reference.json
"""
import json
import math
import os
import sys
from pathlib import Path

# The products here are small (one passage at a time): BLAS threads only
# contend, 2.5x slower on two busy cores than one thread.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402


def load(root: Path):
    ids, texts = [], []
    with open(root / "corpus.jsonl") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                ids.append(str(d["_id"]))
                texts.append(((d.get("title") or "") + " " + (d.get("text") or "")).strip())
    qrels = {}
    with open(root / "qrels" / "test.tsv") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 3 and p[2].isdigit():
                qrels.setdefault(p[0], {})[p[1]] = int(p[2])
    queries = []
    with open(root / "queries.jsonl") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                if str(d["_id"]) in qrels:
                    queries.append((str(d["_id"]), d["text"]))
    return ids, texts, qrels, queries


def bm25(texts, queries):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    q_tokens = bm25s.tokenize([q for _, q in queries], stopwords="en", stemmer=stemmer, show_progress=False)
    results, _scores = retriever.retrieve(q_tokens, k=100, show_progress=False)
    return [list(row) for row in results]


class MiniLM:
    """BERT encoder + mean pooling, as sentence-transformers runs it."""

    def __init__(self, model_dir: Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(256)
        raw = load_file(str(model_dir / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items()}
        cfg = json.loads((model_dir / "config.json").read_text())
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg["layer_norm_eps"]

    def norm(self, x, name):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def embed(self, text: str) -> np.ndarray:
        from scipy.special import erf

        ids = self.tok.encode(text).ids
        n, w = len(ids), self.w
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = self.norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        d = x.shape[1] // self.heads
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            q, k, v = (
                self.linear(x, p + "attention.self." + s).reshape(n, self.heads, d).transpose(1, 0, 2)
                for s in ("query", "key", "value")
            )
            s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(n, -1)
            x = self.norm(self.linear(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = self.linear(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
            x = self.norm(self.linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        e = x.mean(0)
        return e / np.linalg.norm(e)


def dense(texts, queries, model_dir: Path):
    model = MiniLM(model_dir)
    docs = np.zeros((len(texts), model.w["embeddings.word_embeddings.weight"].shape[1]), np.float32)
    for i, t in enumerate(texts):
        docs[i] = model.embed(t)
        if (i + 1) % 1000 == 0:
            print(f"dense reference: {i + 1}/{len(texts)} passages", file=sys.stderr)
    return [list(np.argsort(-(docs @ model.embed(q)), kind="stable")[:100]) for _, q in queries]


def main() -> None:
    mode, root = sys.argv[1], Path(sys.argv[2])
    ids, texts, qrels, queries = load(root)
    if mode == "bm25":
        results = bm25(texts, queries)
    elif mode == "dense":
        results = dense(texts, queries, Path(sys.argv[3]))
    else:
        sys.exit(f"unknown reference {mode!r} (bm25 or dense)")
    nd, rc, mr = [], [], []
    for (qid, _), row in zip(queries, results):
        ranked = [ids[i] for i in row]
        judged = qrels[qid]
        dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
        ideal = sorted((g for g in judged.values() if g > 0), reverse=True)
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:10]))
        nd.append(dcg / idcg if idcg else 0.0)
        rel = [d for d, g in judged.items() if g > 0]
        rc.append(sum(1 for d in ranked[:100] if judged.get(d, 0) > 0) / len(rel) if rel else 0.0)
        mr.append(next((1.0 / (i + 1) for i, d in enumerate(ranked[:10]) if judged.get(d, 0) > 0), 0.0))
    n = len(queries)
    print(json.dumps({"ndcg10": sum(nd) / n, "recall100": sum(rc) / n, "mrr10": sum(mr) / n}))


if __name__ == "__main__":
    main()
