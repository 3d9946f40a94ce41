#!/usr/bin/env python3
"""Ingest throughput: Tokenmill reading the same records as JSONL, a JSON array, CSV and
Parquet (snappy/v1 and zstd/v2 pages) next to Python's json, orjson and pyarrow (json,
csv, parquet readers), in one run.

Every tool parses the whole file and produces the text of every record (Tokenmill: the
ingest stage of a build — read, parse, map each row to a record). MB/s is of the file's
bytes. Round-robin rounds, best round per tool (the machine is noisy).

usage: python Benchmarks/bench_ingest.py [--corpus FILE.jsonl] [--field text] [--limit N] [--repeat 3] [--only parquet]
Default corpus: build/bench/minhash-instructions80-instruction-100000.jsonl when present
(the anchors' instruction corpus, see bench_minhash.py), else the demo's Alpaca texts.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / ".build" / "release" / "tokenmill-bench"


def load_texts(path: Path, field: str, limit: int) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line)[field])
                if limit and len(out) >= limit:
                    break
    return out


def demo_texts() -> list[str]:
    rows = json.loads((REPO / "Specs" / "data" / "alpaca_en_2000.json").read_text(encoding="utf-8"))
    return [f"{r['instruction']}\n\n{r['input']}\n\n{r['output']}" for r in rows] * 20


def write_formats(texts: list[str], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"jsonl": folder / "records.jsonl", "json": folder / "records.json", "csv": folder / "records.csv",
             "parquet": folder / "records.parquet"}
    with open(files["jsonl"], "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    files["json"].write_text(json.dumps([{"text": t} for t in texts], ensure_ascii=False), encoding="utf-8")
    with open(files["csv"], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        for t in texts:
            w.writerow([t])
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.table({"text": texts}), files["parquet"], compression="snappy")
        # The other common shape: zstd pages, data page v2 (what newer writers choose).
        files["parquet-zstd-v2"] = folder / "records.zstd-v2.parquet"
        pq.write_table(pa.table({"text": texts}), files["parquet-zstd-v2"], compression="zstd", data_page_version="2.0")
        # Every other codec pyarrow writes, and the DELTA string encoding (issue 18: at
        # least pyarrow's single-threaded speed on each).
        for codec in ("none", "gzip", "lz4", "brotli"):
            files[f"parquet-{codec}"] = folder / f"records.{codec}.parquet"
            pq.write_table(pa.table({"text": texts}), files[f"parquet-{codec}"], compression=codec)
        files["parquet-delta"] = folder / "records.delta.parquet"
        pq.write_table(pa.table({"text": texts}), files["parquet-delta"], compression="snappy", use_dictionary=False,
                       column_encoding={"text": "DELTA_LENGTH_BYTE_ARRAY"})
    except ImportError:
        del files["parquet"]
    return files


def run_tokenmill(path: Path, fmt: str, threads: int, from_memory: bool = False) -> tuple[float, int]:
    # Best of two runs inside one process: the second finds a warm heap, as the Python
    # readers do after the first round in this long-lived process (a fresh process pays
    # the page faults of every record's first allocation).
    extra = ["--from-memory", "1"] if from_memory else []
    out = subprocess.run([str(BENCH), "ingest", "--input", str(path), "--format", fmt, "--threads", str(threads), "--repeat", "2", *extra],
                         capture_output=True, check=True, text=True)
    r = json.loads(out.stdout)
    return r["seconds"], r["records"]


def run_extract(path: Path) -> tuple[float, int]:
    # JSONL field extraction alone (the measure): split lines, find the field,
    # unescape it into scratch memory; no records built. File bytes already in memory.
    out = subprocess.run([str(BENCH), "ingest-extract", "--input", str(path), "--repeat", "2"],
                         capture_output=True, check=True, text=True)
    r = json.loads(out.stdout)
    return r["seconds"], r["rows"]


def python_readers():
    def json_lines(p):
        with open(p, "rb") as f:
            return [json.loads(l)["text"] for l in f if l.strip()]

    def orjson_lines(p):
        import orjson
        with open(p, "rb") as f:
            return [orjson.loads(l)["text"] for l in f if l.strip()]

    def arrow_json(p, threads):
        import pyarrow.json as pj
        return pj.read_json(p, read_options=pj.ReadOptions(use_threads=threads, block_size=1 << 24)).column("text").to_pylist()

    def json_array(p):
        return [r["text"] for r in json.loads(Path(p).read_bytes())]

    def orjson_array(p):
        import orjson
        return [r["text"] for r in orjson.loads(Path(p).read_bytes())]

    def csv_module(p):
        with open(p, encoding="utf-8", newline="") as f:
            return [r["text"] for r in csv.DictReader(f)]

    def arrow_csv(p, threads):
        import pyarrow.csv as pc
        opts = pc.ParseOptions(newlines_in_values=True)
        return pc.read_csv(p, read_options=pc.ReadOptions(use_threads=threads, block_size=1 << 24), parse_options=opts).column("text").to_pylist()

    def arrow_parquet(p, threads):
        import pyarrow.parquet as pq
        return pq.read_table(p, use_threads=threads).column("text").to_pylist()

    try:
        import orjson  # noqa: F401  (optional: `pip install orjson` to compare with it)
        has_orjson = True
    except ImportError:
        has_orjson = False
        print("orjson is not installed: its rows are left out", file=sys.stderr)
    readers = {
        "jsonl": [("json (per line)", 1, json_lines), ("orjson (per line)", 1, orjson_lines),
                  ("pyarrow.json", 1, lambda p: arrow_json(p, False)), ("pyarrow.json", 2, lambda p: arrow_json(p, True))],
        "json": [("json.loads", 1, json_array), ("orjson.loads", 1, orjson_array)],
        "csv": [("csv.DictReader", 1, csv_module), ("pyarrow.csv", 1, lambda p: arrow_csv(p, False)), ("pyarrow.csv", 2, lambda p: arrow_csv(p, True))],
        "parquet": [("pyarrow.parquet", 1, lambda p: arrow_parquet(p, False)), ("pyarrow.parquet", 2, lambda p: arrow_parquet(p, True))],
    }
    if not has_orjson:
        readers = {k: [r for r in v if not r[0].startswith("orjson")] for k, v in readers.items()}
    return readers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus")
    ap.add_argument("--field", default="text")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="run only the formats whose name starts with this (e.g. parquet)")
    a = ap.parse_args()
    default = REPO / "build" / "bench" / "minhash-instructions80-instruction-100000.jsonl"
    if a.corpus:
        texts, source = load_texts(Path(a.corpus), a.field, a.limit), a.corpus
    elif default.exists():
        texts, source = load_texts(default, "text", a.limit), str(default.relative_to(REPO))
    else:
        texts, source = demo_texts(), "Specs/data/alpaca_en_2000.json x 20"
    files = write_formats(texts, REPO / "build" / "bench" / "ingest")
    if a.only:
        files = {k: v for k, v in files.items() if k.startswith(a.only)}
    readers = python_readers()
    best: dict[tuple[str, str, int], float] = {}
    for r in range(a.repeat):
        for fmt, path in files.items():
            for threads in (1, 2):
                secs, n = run_tokenmill(path, fmt.split("-")[0], threads)
                assert n == len(texts), f"tokenmill read {n} of {len(texts)} records from {fmt}"
                key = (fmt, "tokenmill", threads)
                best[key] = min(best.get(key, 1e9), secs)
            if fmt == "jsonl":
                # Field extraction and record building alone: the file's bytes already in memory.
                secs, n = run_tokenmill(path, "jsonl", 1, from_memory=True)
                key = (fmt, "tokenmill (bytes in memory)", 1)
                best[key] = min(best.get(key, 1e9), secs)
                secs, n = run_extract(path)
                assert n == len(texts), f"tokenmill extracted {n} of {len(texts)} rows"
                key = (fmt, "tokenmill field extraction (bytes in memory, no records)", 1)
                best[key] = min(best.get(key, 1e9), secs)
            for name, threads, fn in readers[fmt.split("-")[0]]:
                t0 = time.perf_counter()
                got = fn(str(path))
                secs = time.perf_counter() - t0
                assert len(got) == len(texts), f"{name} read {len(got)} of {len(texts)}"
                key = (fmt, name, threads)
                best[key] = min(best.get(key, 1e9), secs)
        print(f"round {r + 1}/{a.repeat} done", file=sys.stderr)
    print(f"\n{len(texts):,} records from {source}; MB/s of file bytes, best of {a.repeat} round-robin rounds, "
          f"{os.cpu_count()} cores\n")
    text_mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"Text: {text_mb:.1f} MB. For Parquet the file is compressed, so compare times (the last column), not MB/s.\n")
    print("| format | file MB | tool | threads | MB/s | x tokenmill (1 thread) |")
    print("|---|---|---|---|---|---|")
    for fmt, path in files.items():
        size = path.stat().st_size
        ref = best.get((fmt, "tokenmill", 1))
        for (f, name, threads), secs in sorted(best.items(), key=lambda kv: (kv[0][0] != fmt, kv[1])):
            if f != fmt:
                continue
            ratio = f"{(size / secs) / (size / ref):.2f}" if ref else "—"
            print(f"| {fmt} | {size / 1e6:.1f} | {name} | {threads} | {size / secs / 1e6:.0f} | {ratio} |")
    print(f"\nCommand: `python Benchmarks/bench_ingest.py{' --corpus ' + a.corpus if a.corpus else ''} --repeat {a.repeat}{' --only ' + a.only if a.only else ''}`")


if __name__ == "__main__":
    main()
