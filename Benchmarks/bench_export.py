#!/usr/bin/env python3
"""`tokenmill export` next to `cp` of the same bytes, in one run, alternating rounds.

Builds (once) a dataset from ../shared/anchors/corpus.py's mixed JSONL (dedup off, so
every record becomes tokens; cl100k_base, plain template, concat at 2048),
then for each format: export it (timed, end to end: read and check the shards,
decompress on all cores, write and fsync), and `cp -r` of the export's own output to a
fresh folder followed by `sync -f` (the same bytes written and made durable). Prints the
output MB/s of both and their ratio (> 1: export is faster than copying its output).

usage: bench_export.py [--mb 200] [--rounds 3] [--bin .build/release/tokenmill] [--work DIR]
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHORS = REPO.parent / "shared" / "anchors"


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(cmd) -> float:
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default=str(REPO / ".build" / "release" / "tokenmill"))
    ap.add_argument("--work", default=str(REPO / "build" / "bench-e2e"))
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"mixed{a.mb}.jsonl"
    if not corpus.is_file():
        if not (ANCHORS / "corpus.py").is_file():
            sys.exit(f"{ANCHORS}/corpus.py is absent: this benchmark needs ../shared beside the repository")
        subprocess.run([sys.executable, str(ANCHORS / "corpus.py"), "--mb", str(a.mb), "--out", str(corpus)], check=True,
                       stdout=subprocess.DEVNULL)
    dataset = work / f"export-src{a.mb}"
    if not (dataset / "index.json").is_file():
        spec = work / f"export-src{a.mb}.json"
        spec.write_text(json.dumps({
            "name": f"export-src{a.mb}", "sources": [{"name": "mixed", "path": corpus.name, "map": {"text": "text"}}],
            "dedup": {"exact": False},
            "tokenizer": "cl100k_base", "template": "plain", "pack": {"seq_len": 2048, "strategy": "concat"},
            "output": {"dir": dataset.name}}))
        subprocess.run([a.bin, "build", str(spec), "--quiet"], check=True)
    shard_bytes = sum(p.stat().st_size for p in dataset.glob("*.tkm"))
    tokens = json.loads((dataset / "index.json").read_text())["splits"]["train"]["tokens"]
    print(f"dataset: {shard_bytes / 1e6:.1f} MB of shards, {tokens:,} tokens")
    rows = []
    for fmt in ("megatron", "datatrove", "mds", "hf"):
        out, copy = work / f"export-{fmt}", work / f"export-{fmt}-copy"
        runs = {"export": [], "cp": []}
        written = 0
        for _ in range(a.rounds):
            shutil.rmtree(out, ignore_errors=True)
            runs["export"].append(timed([a.bin, "export", str(dataset), "--format", fmt, "--out", str(out), "--quiet"]))
            written = size_of(out)
            shutil.rmtree(copy, ignore_errors=True)
            t0 = time.monotonic()
            subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
            subprocess.run(["sync", "-f", str(copy)], check=True)
            runs["cp"].append(time.monotonic() - t0)
        e, c = statistics.median(runs["export"]), statistics.median(runs["cp"])
        rows.append({"format": fmt, "written_mb": written / 1e6, "export_mbs": written / 1e6 / e, "cp_mbs": written / 1e6 / c,
                     "export_over_cp": c / e})
        print(json.dumps(rows[-1]))
        shutil.rmtree(copy, ignore_errors=True)
    print()
    print("| format | bytes written MB | export MB/s | cp + sync MB/s | export / cp |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['format']} | {r['written_mb']:.1f} | {r['export_mbs']:.0f} | {r['cp_mbs']:.0f} | {r['export_over_cp']:.2f}x |")


if __name__ == "__main__":
    main()
