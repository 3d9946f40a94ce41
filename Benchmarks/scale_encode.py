"""One thread against two, for `tokenmill encode` and the library's encoder, in triples
run back to back (encode 1, encode 2, library 1, library 2), so each scaling figure
compares runs seconds apart on this VM whose speed moves by a third within minutes.

    F=build/bench/encode/docs-72mb-1r-0.jsonl python3 Benchmarks/scale_encode.py VOCAB ROUNDS [TOKENMILL]

Each process is held to its thread count of CPUs; each `encode` is prepared as
bench_encode.py prepares its own (`before_encode`: the previous output removed, the
vocabulary mapped and the input read before the clock). Prints each
round's wall and CPU times and the medians of the per-round scalings.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_encode import before_encode, pinned  # noqa: E402
V, N = sys.argv[1], int(sys.argv[2])
TM = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, ".build/release/tokenmill")
BENCH = os.path.join(ROOT, ".build/release/tokenmill-bench")
F = os.environ.get("F", os.path.join(ROOT, "build/bench/encode/lines-72mb-1r-0.jsonl"))
OUT = os.path.join(ROOT, "build/bench/encode/ids.jsonl")


def encode(threads):
    before_encode(V, F, OUT, TM)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(OUT, "wb") as f, pinned(threads):
        t0 = time.perf_counter()
        subprocess.run([TM, "encode", "--tokenizer", V, "--field", "text", "--threads", str(threads), F],
                       stdout=f, check=True)
        wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime


def library(threads):
    with pinned(threads):
        out = subprocess.run([BENCH, "bpe", "--tokenizer", V, "--corpus", F, "--threads", str(threads), "--repeat", "1"],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["seconds"]


def main():
    rows = []
    for _ in range(N):
        e1, e2, l1, l2 = encode(1), encode(2), library(1), library(2)
        rows.append((e1[0] / e2[0], l1 / l2))
        print(f"encode 1t {e1[0] * 1e3:6.1f} ms (cpu {e1[1] * 1e3:6.1f})  2t {e2[0] * 1e3:6.1f} ms (cpu {e2[1] * 1e3:6.1f})"
              f"  scaling {e1[0] / e2[0]:.2f}   library 1t {l1 * 1e3:6.1f} ms  2t {l2 * 1e3:6.1f} ms  scaling {l1 / l2:.2f}")
    print(f"median scaling: encode {statistics.median(r[0] for r in rows):.2f}x, library {statistics.median(r[1] for r in rows):.2f}x")


if __name__ == "__main__":
    main()
