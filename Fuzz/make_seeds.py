#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into Fuzz/corpus/<target>/ (small files of
our own making: no outside test material is shipped). `make fuzz` grows the corpus from
them; the test suite replays it (Tests/FuzzReplayTests).

usage: build/venv/bin/python Fuzz/make_seeds.py [--tokenmill .build/release/tokenmill]"""
import argparse
import gzip
import io
import json
import subprocess
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

ROOT = Path(__file__).resolve().parent / "corpus"
ROWS = [
    {"instruction": "Give three tips.", "input": "", "output": "Eat, sleep, move."},
    {"instruction": "Quote \"a, b\"", "input": "line one\nline two", "output": "He said \"hi\"."},
    {"instruction": "Translate", "input": "你好，世界 😀", "output": "Hello, world\u2028x"},
]


def put(target: str, name: str, data: bytes) -> None:
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenmill", default=str(Path(__file__).resolve().parents[1] / ".build" / "release" / "tokenmill"))
    a = ap.parse_args()
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()
    put("json", "object.json", json.dumps(ROWS[1]).encode())
    put("json", "nested.json", b'{"a": [1, -2.5e-3, true, null, {"b": "\\u00e9\\ud83d\\ude00"}], "c": ""}')
    put("jsonl", "rows.jsonl", jsonl)
    put("jsonl", "bad.jsonl", jsonl + b'{"instruction": 1, "output": [1]}\nnot json\n\xef\xbb\xbf')
    put("json-array", "rows.json", json.dumps(ROWS, ensure_ascii=False, indent=1).encode())
    put("json-array", "damaged.json", b'[{"instruction": "a", "output": "b"}}, {"instruction": oops}, {"instruction": "c", "output": "d"}]')
    buf = io.StringIO()
    import csv
    w = csv.DictWriter(buf, fieldnames=["instruction", "input", "output"], lineterminator="\r\n")
    w.writeheader()
    w.writerows(ROWS)
    put("csv", "rows.csv", buf.getvalue().encode())
    put("csv", "odd.csv", b'\xef\xbb\xbfinstruction,input,output\na,"b""c",d\n1,This "q" x,3\n"open,2\n')
    put("gzip", "rows.jsonl.gz", gzip.compress(jsonl, mtime=0))
    put("gzip", "members.jsonl.gz", gzip.compress(jsonl[:40], mtime=0) + gzip.compress(jsonl[40:], mtime=0))
    put("zstd", "rows.jsonl.zst", zstandard.ZstdCompressor(level=3).compress(jsonl))
    t = pa.table({"instruction": [r["instruction"] for r in ROWS] * 4, "input": [r["input"] for r in ROWS] * 4,
                  "output": [r["output"] for r in ROWS] * 4})
    for name, opts in {"snappy": {}, "zstd-v2": {"compression": "zstd", "data_page_version": "2.0"},
                       "plain-gzip": {"compression": "gzip", "use_dictionary": False},
                       "lz4": {"compression": "lz4"}, "brotli": {"compression": "brotli"},
                       "delta": {"use_dictionary": False, "column_encoding": {"instruction": "DELTA_BYTE_ARRAY", "input": "DELTA_LENGTH_BYTE_ARRAY"}}}.items():
        out = io.BytesIO()
        pq.write_table(t, out, row_group_size=5, data_page_size=64, **opts)
        put("parquet", f"{name}.parquet", out.getvalue())
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "r.jsonl").write_bytes(jsonl)
        spec = {"sources": [{"name": "s", "path": "r.jsonl", "map": {"prompt": "{instruction}[[\n{input}]]", "response": "output"}}],
                "tokenizer": "gpt2", "template": "chatml", "pack": {"seq_len": 32, "strategy": "concat"}, "output": {"dir": "out"}}
        (Path(tmp) / "s.json").write_text(json.dumps(spec))
        subprocess.run([a.tokenmill, "build", str(Path(tmp) / "s.json"), "--quiet"], check=True)
        put("shard", "train.tkm", next((Path(tmp) / "out").glob("*.tkm")).read_bytes())
        put("spec", "spec.json", json.dumps(spec, indent=1).encode())
    vocab = {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "Ġ": 5, "<unk>": 6}
    tok = {"version": "1.0", "added_tokens": [{"id": 7, "content": "<eos>", "special": True, "lstrip": False, "rstrip": False,
                                                 "single_word": False, "normalized": False}],
           "normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           "model": {"type": "BPE", "vocab": vocab, "merges": ["a b", "ab c"]}, "decoder": {"type": "ByteLevel"}}
    put("tokenizer-json", "tiny.json", json.dumps(tok).encode())


if __name__ == "__main__":
    main()
