#!/usr/bin/env python3
"""SentencePiece-style BPE throughput: `tokenmill encode` (end to end: reading the JSONL,
encoding, writing the ids) next to Hugging Face `tokenizers` (`encode_batch`, one thread:
RAYON_NUM_THREADS=1) on the same texts and the same tokenizer.json, in one run; MB/s of
UTF-8 text and the ratio. Each tool's ids are checked against `tokenizers` on every text.

usage: python Benchmarks/bench_sentencepiece.py [--tokenizer FILE.json] [--corpus FILE.jsonl] [--mb 13] [--repeat 3]

Defaults: Phi-3-mini's tokenizer.json from ../shared/outside/tokenizers, the first --mb MB
of texts of build/bench-e2e/mixed50.jsonl (../shared/anchors/corpus.py's mixed corpus:
prose, Chinese, code, instructions).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def peer(tokenizer, corpus, repeat):
    os.environ["RAYON_NUM_THREADS"] = "1"
    import tokenizers
    texts = [json.loads(line)["text"] for line in open(corpus, encoding="utf-8")]
    tok = tokenizers.Tokenizer.from_file(tokenizer)
    tok.encode_special_tokens = True
    best = 1e9
    for _ in range(repeat):
        t0 = time.perf_counter()
        ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
        best = min(best, time.perf_counter() - t0)
    return best, ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=str(SHARED / "outside" / "tokenizers" / "phi-3-mini.json"))
    ap.add_argument("--corpus", default=str(REPO / "build" / "bench-e2e" / "mixed50.jsonl"))
    ap.add_argument("--mb", type=float, default=13)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bin", default=str(REPO / ".build" / "release" / "tokenmill"))
    a = ap.parse_args()
    if not Path(a.tokenizer).is_file() or not Path(a.corpus).is_file():
        sys.exit(f"needs {a.tokenizer} and {a.corpus} (../shared beside the repository; the corpus comes from make bench-e2e)")
    work = REPO / "build" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    texts, size = [], 0
    for line in open(a.corpus, encoding="utf-8"):
        t = json.loads(line)["text"]
        texts.append(t)
        size += len(t.encode())
        if size >= a.mb * 1e6:
            break
    corpus = work / "sp-texts.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    times = {"tokenizers": [], "tokenmill": []}
    want = None
    for _ in range(a.repeat):
        best, want = peer(a.tokenizer, corpus, 1)
        times["tokenizers"].append(best)
        out = work / "sp-ids.jsonl"
        t0 = time.perf_counter()
        with open(out, "wb") as f:
            subprocess.run([a.bin, "encode", "--tokenizer", a.tokenizer, "--field", "text", "--threads", "1", str(corpus)], stdout=f, check=True)
        times["tokenmill"].append(time.perf_counter() - t0)
    got = [json.loads(line) for line in open(out)]
    bad = sum(g != w for g, w in zip(got, want)) + abs(len(got) - len(want))
    mb = size / 1e6
    hf, tm = min(times["tokenizers"]), min(times["tokenmill"])
    print(f"{len(texts):,} texts, {mb:.1f} MB, {Path(a.tokenizer).name}, one thread, best of {a.repeat}")
    print(f"| tool | MB/s | x tokenizers |\n|---|---|---|")
    print(f"| tokenizers encode_batch (RAYON_NUM_THREADS=1) | {mb / hf:.2f} | 1.00 |")
    print(f"| tokenmill encode --threads 1 (end to end) | {mb / tm:.2f} | {hf / tm:.2f} |")
    print(f"ids differing from tokenizers: {bad} of {len(want)}")


if __name__ == "__main__":
    main()
