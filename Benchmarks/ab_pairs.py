#!/usr/bin/env python3
"""Two builds of `tokenmill-bench` against each other, run at the same time.

usage: python Benchmarks/ab_pairs.py CORPUS.jsonl ROUNDS A_BIN[:VAR=VALUE...] B_BIN[:VAR=VALUE...]
           [--tokenizer o200k_base] [--args "bpe ... extra"]

Each round starts `A bpe --tokenizer T --corpus CORPUS --threads 1 --repeat 1` on one CPU
and B's on the other at the same moment (CPUs swapped every round), and takes the ratio
of the two speeds each process reports. On this shared VM a process's speed moves by a
third from one minute to the next; run one after the other, two builds meet different
minutes, and 10 alternating pairs could not tell 3% apart (the same binary against
itself: per-pair ratios 0.93-1.06). Run together, both see the same minute, and the
median of 24 per-round ratios resolves a few percent (A against A: 0.986, IQR
0.93-1.06; a 5% change came out 0.935-0.955 in three runs of 24). Both processes share
the L3 cache and the memory bus, as two workers of one `encode --threads 2` do, so a
change that saves memory traffic shows more here than on an idle machine; check such a
change with one-at-a-time runs too.

Each `VAR=VALUE` after a binary is set in that binary's environment. Prints the medians
of each build's MB/s and the median and quartiles of the per-round ratios B/A.
"""
import argparse
import json
import os
import statistics
import subprocess


def spawn(spec, cpu, corpus, tokenizer):
    binary, *env = spec.split(":")
    e = dict(os.environ)
    for kv in env:
        k, v = kv.split("=", 1)
        e[k] = v
    cmd = ["taskset", "-c", str(cpu), binary, "bpe", "--tokenizer", tokenizer, "--corpus", corpus,
           "--threads", "1", "--repeat", "1"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=e)


def speed(p):
    out = p.communicate()[0]
    if p.returncode != 0:
        raise SystemExit(f"benchmark failed ({p.returncode})")
    return json.loads(out.strip().splitlines()[-1])["mb_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("rounds", type=int)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tokenizer", default="o200k_base")
    o = ap.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two CPUs")
    ra, rb = [], []
    for i in range(o.rounds):
        ca, cb = (0, 1) if i % 2 == 0 else (1, 0)
        pa, pb = spawn(o.a, ca, o.corpus, o.tokenizer), spawn(o.b, cb, o.corpus, o.tokenizer)
        ra.append(speed(pa))
        rb.append(speed(pb))
    ratios = [y / x for x, y in zip(ra, rb)]
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    print(f"{os.path.basename(o.corpus)}: A {statistics.median(ra):.1f} MB/s, B {statistics.median(rb):.1f} MB/s; "
          f"B/A median {statistics.median(ratios):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f}, {len(ratios)} rounds)")


if __name__ == "__main__":
    main()
