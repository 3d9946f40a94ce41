#!/usr/bin/env python3
"""End to end: `tokenmill build` of a real corpus next to bare `tokenmill encode` of the same
texts (and, with --datatrove, datatrove's MinHash + tokenize pipeline as
../shared/anchors/bench_datatrove.py runs it), in one run, alternating rounds.

The corpus is ../shared/anchors/corpus.py's mixed JSONL ({"text": ...}: prose, Chinese,
code, instruction pairs) at each --mb size. The build spec: text records, exact + near
dedup (threshold 0.8, 5-grams, 112 permutations as datatrove's defaults), cl100k_base,
plain template, concat packing at 2048. Prints MB/s of input, peak RSS (ru_maxrss of the
child), the build/encode ratio, the one-to-two-thread scaling and bytes of RSS per record.

usage: bench_e2e.py [--mb 50,200] [--rounds 3] [--bin .build/release/tokenmill] [--work DIR] [--datatrove]
"""
import argparse
import json
import shutil
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHORS = REPO.parent / "shared" / "anchors"


def timed(cmd, env=None, stdout=subprocess.DEVNULL):
    """Wall seconds, peak RSS bytes (of the children so far) and CPU seconds (user + system)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=stdout, stderr=subprocess.PIPE, env=env)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    # ru_maxrss of children is the largest child so far: run the big ones last or read it per run.
    return wall, max(r1.ru_maxrss, r0.ru_maxrss) * 1024, cpu


def peak_of(cmd, report=None):
    """Peak RSS of one command: /usr/bin/time -f %M, and for a build the largest of its
    stages' peaks in report.json (each stage resets the kernel's high-water mark, which
    ru_maxrss reads too, so %M alone can miss an earlier stage's peak)."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    peak = int(r.stderr.decode().strip().splitlines()[-1]) * 1024
    if report is not None and Path(report).is_file():
        stages = json.loads(Path(report).read_text()).get("stages", [])
        peak = max([peak] + [s.get("peak_rss_bytes", 0) for s in stages])
    return peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", default="50,200")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default=str(REPO / ".build" / "release" / "tokenmill"))
    ap.add_argument("--work", default=str(REPO / "build" / "bench-e2e"))
    ap.add_argument("--datatrove", action="store_true")
    a = ap.parse_args()
    if not (ANCHORS / "corpus.py").is_file():
        sys.exit(f"{ANCHORS}/corpus.py is absent: this benchmark needs ../shared beside the repository")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for mb in [int(x) for x in a.mb.split(",")]:
        corpus = work / f"mixed{mb}.jsonl"
        if not corpus.is_file():
            subprocess.run([sys.executable, str(ANCHORS / "corpus.py"), "--mb", str(mb), "--out", str(corpus)], check=True,
                           stdout=subprocess.DEVNULL)
        size = corpus.stat().st_size
        records = sum(1 for _ in open(corpus, "rb"))
        spec = work / f"e2e{mb}.json"
        spec.write_text(json.dumps({
            "name": f"e2e{mb}", "sources": [{"name": "mixed", "path": corpus.name, "map": {"text": "text"}}],
            "dedup": {"exact": True, "near": {"threshold": 0.8, "ngram": 5, "permutations": 112}},
            "tokenizer": "cl100k_base", "template": "plain", "pack": {"seq_len": 2048, "strategy": "concat"},
            "output": {"dir": f"out{mb}"}}))
        # A fresh output folder: a work folder left by an older build (killed, or of an
        # earlier work format) would make the first build refuse or resume.
        shutil.rmtree(work / f"out{mb}", ignore_errors=True)
        runs = {k: [] for k in ("build1", "build2", "encode1", "encode2")}
        cpu = {"build1": [], "build2": []}
        for _ in range(a.rounds):
            for t in (1, 2):
                wall, _, seconds = timed([a.bin, "build", str(spec), "--threads", str(t), "--quiet"])
                runs[f"build{t}"].append(wall)
                cpu[f"build{t}"].append(seconds)
                runs[f"encode{t}"].append(timed([a.bin, "encode", "--tokenizer", "cl100k_base", "--field", "text", "--threads", str(t),
                                                 str(corpus)])[0])
            # A round's walls and CPU seconds: the machine's speed drifts between runs
            # seconds apart, which the CPU seconds of the same work show (see RESULTS.md).
            b1, b2, c1, c2 = runs["build1"][-1], runs["build2"][-1], cpu["build1"][-1], cpu["build2"][-1]
            print(f"round: build 1t {b1:.2f} s wall {c1:.2f} s CPU, 2t {b2:.2f} s wall {c2:.2f} s CPU "
                  f"(cores busy {c2 / b2:.2f}), scaling {b1 / b2:.2f}x, at equal CPU speed {b1 / b2 * c2 / c1:.2f}x, "
                  f"encode 1t {runs['encode1'][-1]:.2f} s, 2t {runs['encode2'][-1]:.2f} s (scaling {runs['encode1'][-1] / runs['encode2'][-1]:.2f}x)",
                  file=sys.stderr, flush=True)
        # Resume: a build SIGKILLed at ~90% of its work, then the same command again. The
        # kill comes once the pack stage has committed (only the write and finish stages
        # are left) and at least 85% of the median two-thread wall time has passed: a
        # kill by the clock alone landed mid-scan whenever the machine ran slower than the
        # median that minute. The fraction of the median at which it came is reported.
        resume, kill_at = [], []
        pack_done = work / f"out{mb}" / ".work" / "pack" / "0.done"
        for _ in range(a.rounds):
            median2 = statistics.median(runs["build2"])
            t0 = time.perf_counter()
            p = subprocess.Popen([a.bin, "build", str(spec), "--threads", "2", "--quiet"], stderr=subprocess.DEVNULL)
            while p.poll() is None and not (pack_done.exists() and time.perf_counter() - t0 >= 0.85 * median2):
                time.sleep(0.002)
            killed = p.poll() is None
            kill_at.append((time.perf_counter() - t0) / median2)
            p.kill(); p.wait()
            rerun = timed([a.bin, "build", str(spec), "--threads", "2", "--quiet"])[0]
            full = timed([a.bin, "build", str(spec), "--threads", "2", "--quiet"])[0]
            if killed:
                resume.append(rerun / full)
        rss = {t: peak_of([a.bin, "build", str(spec), "--threads", str(t), "--quiet"], report=work / f"out{mb}" / "report.json") for t in (1, 2)}
        med = {k: statistics.median(v) for k, v in runs.items()}
        pair = statistics.median([e / b for b, e in zip(runs["build2"], runs["encode2"])])
        scale = statistics.median([b1 / b2 for b1, b2 in zip(runs["build1"], runs["build2"])])
        # Bare `tokenmill encode` over the same texts, one thread against two: the scaling
        # this machine gives a program with no serial part at all, measured in the same run.
        encode_scale = statistics.median([e1 / e2 for e1, e2 in zip(runs["encode1"], runs["encode2"])])
        # The same scaling with each run's wall time scaled by its CPU seconds: both builds
        # do the same work (their instruction counts differ by 0.1% under callgrind), so
        # the CPU seconds of the two measure the machine's speed in each run, which drifts
        # here by up to 40% between runs seconds apart. What is left is how well the build
        # keeps two cores busy (1 + the fraction of the work that runs in parallel).
        scale_cpu = statistics.median([b1 / b2 * c2 / c1 for b1, b2, c1, c2 in zip(runs["build1"], runs["build2"], cpu["build1"], cpu["build2"])])
        row = {"mb": round(size / 1e6, 1), "records": records,
               "build1_mbs": size / 1e6 / med["build1"], "build2_mbs": size / 1e6 / med["build2"],
               "encode1_mbs": size / 1e6 / med["encode1"], "encode2_mbs": size / 1e6 / med["encode2"],
               "build_over_encode_2t": pair, "scaling_1_to_2": scale,
               "scaling_1_to_2_equal_cpu_speed": scale_cpu, "encode_scaling_1_to_2": encode_scale,
               "rerun_after_kill_at_90pct": statistics.median(resume) if resume else None,
               "kill_at_fraction_of_median": statistics.median(kill_at) if kill_at else None,
               "rss1_mb": rss[1] / 2**20, "rss2_mb": rss[2] / 2**20}
        if a.datatrove:
            out = work / f"datatrove{mb}.json"
            subprocess.run([sys.executable, str(ANCHORS / "bench_datatrove.py"), "--jsonl", str(corpus), "--shards", "8",
                            "--workers", "2", "--json-out", str(out), "--no-results", "--out", str(work / "datatrove")], check=True)
            dt = json.loads(out.read_text())
            if dt.get("rc") != 0:
                sys.exit(f"datatrove's pipeline failed (exit {dt.get('rc')}); see {work}/datatrove/pipeline.log")
            row["datatrove_mbs"] = dt["mbps"]
            row["datatrove_peak_tree_rss_mb"] = dt.get("peak_tree_rss_mb")
            if row["datatrove_mbs"]:
                row["build2_over_datatrove"] = row["build2_mbs"] / row["datatrove_mbs"]
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    print("\n| input MB | records | build 1t MB/s | build 2t MB/s | encode 2t MB/s | build/encode (2t) | scaling 1->2 (at equal CPU speed; bare encode's) | peak RSS 1t / 2t MB | rerun after a kill at 90% / full build |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mb']} | {r['records']} | {r['build1_mbs']:.1f} | {r['build2_mbs']:.1f} | {r['encode2_mbs']:.1f} | "
              f"{r['build_over_encode_2t']:.2f}x | {r['scaling_1_to_2']:.2f}x ({r['scaling_1_to_2_equal_cpu_speed']:.2f}x; {r['encode_scaling_1_to_2']:.2f}x) | {r['rss1_mb']:.0f} / {r['rss2_mb']:.0f} | "
              f"{(format(r['rerun_after_kill_at_90pct'], '.2f') + 'x') if r['rerun_after_kill_at_90pct'] else '-'} |")
    if any("datatrove_mbs" in r for r in rows):
        print("\n| input MB | datatrove MB/s (2 workers) | Tokenmill build 2t MB/s | Tokenmill / datatrove | datatrove peak tree RSS MB |")
        print("|---|---|---|---|---|")
        for r in rows:
            if "datatrove_mbs" in r:
                print(f"| {r['mb']} | {r['datatrove_mbs']:.2f} | {r['build2_mbs']:.1f} | {r['build2_over_datatrove']:.0f}x | "
                      f"{r.get('datatrove_peak_tree_rss_mb') or 0:.0f} |")


if __name__ == "__main__":
    main()
