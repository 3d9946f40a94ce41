"""Where `tokenmill encode`'s time goes, from CPU samples of one run (`perf record`).

`bench_encode.py` compares `encode` with the library's encoder across processes, and on
this machine the same process varies by a third from run to run (the library's own
best-of-three varied 217-302 ms over ten processes on the same 15.9 MB), so its
`encode / library` ratio moves by more than the 10% it is meant to check. Sample shares
inside one run do not depend on how fast that run was: the share of samples in the BPE
engine (the pre-tokenizer scanners, the piece loop, the merges — the code the library
benchmark times) is what `encode / library` would be if the engine ran at the same speed
in both, and the rest says what the command's own work costs and where.

    build/venv/bin/python Benchmarks/encode_share.py [--vocab o200k_base,cl100k_base]
        [--threads 1] [--runs 3] FILE.jsonl...

Needs `perf` (linux-perf) with software events; the input is read once before each run,
and the ids are written to a new file under build/bench, as `bench_encode.py` does.
"""
import argparse
import collections
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_encode import before_encode  # noqa: E402
TOKENMILL = os.path.join(ROOT, ".build/release/tokenmill")
OUT = os.path.join(ROOT, "build/bench/share")

# Symbols of the BPE engine as the library runs it (Swift mangled names of module BPE).
ENGINE = ("BPE9Tokenizer", "BytePairMerge", "BPE4Scan", "CharStarts", "RankTableC6lookup", "RankTableC8pairRank",
          "O200kWindowPieces", "tm_o200k_starts64", "CL100kPieces", "ClosurePieces")
STARTUP = ("checkImage", "imageFD", "XXH3", "xxh3", "_dl_", "dl_", "swift_getTypeByMangledName", "TypeDecoder")


def category(dso, sym):
    if any(k in sym for k in STARTUP):
        return "startup (vocabulary image checks, hashing, dynamic linking)"
    if any(k in sym for k in ENGINE):
        return "BPE engine"
    if "kernel" in dso:
        return "kernel (output writes, page faults, exit)"
    if "IDWriter" in sym:
        return "id writer (JSON arrays of ids)"
    if any(k in sym for k in ("JSON", "json", "utf8", "UTF8", "FieldScan")):
        return "JSON lines (field scan, UTF-8 checks)"
    if sym.startswith(("__mem", "mem")):
        return "libc memchr/memmove (line splitting, copies)"
    if "swift_" in sym or "swift::" in sym or "malloc" in sym or "free" in sym:
        return "Swift runtime and allocation"
    return "other"


def shares(vocab, threads, path):
    os.makedirs(OUT, exist_ok=True)
    data, out = os.path.join(OUT, "perf.data"), os.path.join(OUT, "ids.jsonl")
    before_encode(vocab, path, out, TOKENMILL)
    with open(out, "wb") as f:
        subprocess.run(["perf", "record", "-q", "-F", "5000", "-o", data, "--", TOKENMILL, "encode", "--tokenizer", vocab,
                        "--field", "text", "--threads", str(threads), path], stdout=f, stderr=subprocess.DEVNULL, check=True)
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "-g", "none", "--stdio"],
                            capture_output=True, text=True, check=True).stdout
    c = collections.Counter()
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
        if m:
            c[category(m.group(2), m.group(3))] += float(m.group(1))
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", default="o200k_base,cl100k_base")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    for path in a.files:
        for vocab in a.vocab.split(","):
            runs = [shares(vocab, a.threads, path) for _ in range(a.runs)]
            keys = sorted({k for r in runs for k in r}, key=lambda k: -sum(r[k] for r in runs))
            print(f"### {os.path.basename(path)}, {vocab}, {a.threads} thread(s): % of samples, {a.runs} runs\n")
            print("| where | " + " | ".join(f"run {i + 1}" for i in range(a.runs)) + " |")
            print("|---|" + "---|" * a.runs)
            for k in keys:
                print(f"| {k} | " + " | ".join(f"{r[k]:.1f}" for r in runs) + " |")
            print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
