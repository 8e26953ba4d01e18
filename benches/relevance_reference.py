#!/usr/bin/env python3
"""Reference BM25 run for `kmt-bench relevance`: bm25s with an English
Snowball stemmer (PyStemmer) over a BEIR set, the same metrics as the Rust
program (nDCG@10 with linear gains, recall@100, MRR@10). Prints JSON.

Usage: bm25_reference.py SET_DIR > reference.json
"""
import json
import math
import sys
from pathlib import Path

import bm25s
import Stemmer


def main() -> None:
    root = Path(sys.argv[1])
    ids, texts = [], []
    with open(root / "corpus.jsonl") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                ids.append(str(d["_id"]))
                texts.append((d.get("title") or "") + " " + (d.get("text") or ""))
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
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    q_tokens = bm25s.tokenize([q for _, q in queries], stopwords="en", stemmer=stemmer, show_progress=False)
    results, _scores = retriever.retrieve(q_tokens, k=100, show_progress=False)
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
