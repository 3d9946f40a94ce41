#!/usr/bin/env python3
"""`tokenmill export` next to `cp` of the same bytes, in one run, alternating rounds.

Builds (once) a dataset from ../shared/anchors/corpus.py's mixed JSONL (dedup off, so
every record becomes tokens; cl100k_base, plain template, concat at 2048),
then for each format: export it (timed, end to end: read and check the shards,
decompress on all cores, write and fsync), and the two things it cannot avoid, timed
apart: reading the shards (`tokenmill verify`: every frame decompressed and checked) and
writing its bytes (`cp -r` of the export's own output to a fresh folder, then `sync -f`).
Prints the output MB/s of export and of cp, and export's time against read + write
(> 1: export is faster than reading the shards and writing the bytes one after the other).

usage: bench_export.py [--mb 200] [--rounds 3] [--formats megatron,hf] [--bin .build/release/tokenmill] [--work DIR]
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
    ap.add_argument("--formats", default="megatron,datatrove,mds,mds-zstd,hf", help="comma-separated subset")
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
    verify = statistics.median(timed([a.bin, "verify", str(dataset)]) for _ in range(a.rounds))
    print(f"reading the shards (tokenmill verify): {verify:.2f} s")
    # mds is uncompressed by default (MDSWriter's default); mds-zstd compresses its shards.
    for fmt in a.formats.split(","):
        how = ["--format", "mds", "--compression", "zstd"] if fmt == "mds-zstd" else ["--format", fmt]
        out, copy = work / f"export-{fmt}", work / f"export-{fmt}-copy"
        runs = {"export": [], "cp": []}
        written = 0
        for _ in range(a.rounds):
            shutil.rmtree(out, ignore_errors=True)
            runs["export"].append(timed([a.bin, "export", str(dataset), *how, "--out", str(out), "--quiet"]))
            written = size_of(out)
            shutil.rmtree(copy, ignore_errors=True)
            t0 = time.monotonic()
            subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
            subprocess.run(["sync", "-f", str(copy)], check=True)
            runs["cp"].append(time.monotonic() - t0)
        e, c = statistics.median(runs["export"]), statistics.median(runs["cp"])
        rows.append({"format": fmt, "written_mb": written / 1e6, "export_s": e, "export_mbs": written / 1e6 / e, "cp_mbs": written / 1e6 / c,
                     "read_plus_write_s": verify + c, "speedup": (verify + c) / e})
        if fmt == "mds-zstd" and shutil.which("zstd") and (work / "export-mds").is_dir():
            # zstd adds a step that reading and writing do not have: compressing 400 MB.
            # Timed apart as the zstd CLI does it (level 3, all cores) on the uncompressed
            # export's shards, so the export is also held against read + compress + write.
            raw = sorted((work / "export-mds").rglob("*.mds"))
            zs = []
            for _ in range(a.rounds):
                shutil.rmtree(copy, ignore_errors=True)
                copy.mkdir(parents=True)
                t0 = time.monotonic()
                subprocess.run(["zstd", "-3", "-T0", "-q", "-f", "--output-dir-flat", str(copy), *map(str, raw)], check=True)
                subprocess.run(["sync", "-f", str(copy)], check=True)
                zs.append(time.monotonic() - t0)
            z = statistics.median(zs)
            rows[-1]["read_compress_write_s"] = verify + z
            rows[-1]["speedup_vs_read_compress_write"] = (verify + z) / e
        print(json.dumps(rows[-1]))
        shutil.rmtree(copy, ignore_errors=True)
    print()
    print("| format | bytes written MB | export s | export MB/s | cp + sync MB/s | read + write s | (read + write) / export |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['format']} | {r['written_mb']:.1f} | {r['export_s']:.2f} | {r['export_mbs']:.0f} | {r['cp_mbs']:.0f} | "
              f"{r['read_plus_write_s']:.2f} | {r['speedup']:.2f}x |")
    for r in rows:
        if "read_compress_write_s" in r:
            print(f"\n{r['format']}: read + `zstd -3 -T0` of the raw shards + write = {r['read_compress_write_s']:.2f} s; "
                  f"(read + compress + write) / export = {r['speedup_vs_read_compress_write']:.2f}x")


if __name__ == "__main__":
    main()
