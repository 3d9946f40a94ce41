"""Input formats and compression: the same records as JSONL, .jsonl.gz, .jsonl.zst, a JSON
array, CSV and plain text give the same shards token for token; damaged and malformed
inputs fail with the file and line (or row), or become rejects under on_error: skip."""
from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
import zstandard

import cli

pytestmark = pytest.mark.binary

ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, sleep, move."},
    {"instruction": "Quote this: \"a, b\"", "input": "line one\nline two", "output": "He said \"hi\", then left."},
    {"instruction": "Translate", "input": "你好，世界", "output": "Hello, world"},
    {"instruction": "Commas, commas", "input": "a,b,,c", "output": "x\r\ny"},
    {"instruction": "emoji 😀 and tabs\t", "input": "", "output": "ok"},
]
MAP = {"prompt": "{instruction}\n\n{input}", "response": "output"}


def write_formats(folder: Path) -> dict[str, str]:
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()
    (folder / "rows.jsonl").write_bytes(jsonl)
    (folder / "rows.jsonl.gz").write_bytes(gzip.compress(jsonl))
    (folder / "rows.jsonl.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(jsonl))
    (folder / "rows.json").write_text(json.dumps(ROWS, ensure_ascii=False, indent=1), encoding="utf-8")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["instruction", "input", "output"], lineterminator="\r\n")
    w.writeheader()
    w.writerows(ROWS)
    (folder / "rows.csv").write_text(buf.getvalue(), encoding="utf-8")
    (folder / "rows.csv.gz").write_bytes(gzip.compress(buf.getvalue().encode()))
    return {k: k for k in ["rows.jsonl", "rows.jsonl.gz", "rows.jsonl.zst", "rows.json", "rows.csv", "rows.csv.gz"]}


def spec(folder: Path, path: str, name="s", mapping=MAP, extra=None, fmt=None) -> Path:
    source = {"name": name, "path": path, "map": mapping}
    if fmt:
        source["format"] = fmt
    if extra:
        source.update(extra)
    body = {"sources": [source], "dedup": {"exact": False}, "tokenizer": "cl100k_base", "template": "chatml",
            "pack": {"strategy": "none", "seq_len": 4096}, "output": {"dir": "out"}}
    p = folder / f"spec-{path.replace('/', '_')}-{name}.json"
    p.write_text(json.dumps(body))
    return p


def sequences(out: Path) -> list[list[int]]:
    from tokenmill import Dataset

    ds = Dataset(str(out), "train")
    return [list(map(int, ds[i]["input_ids"])) for i in range(len(ds))]


def test_every_format_gives_the_same_sequences(tokenmill_bin, tmp_path):
    write_formats(tmp_path)
    results = {}
    for path in ["rows.jsonl", "rows.jsonl.gz", "rows.jsonl.zst", "rows.json", "rows.csv", "rows.csv.gz"]:
        out = cli.build(tokenmill_bin, spec(tmp_path, path), tmp_path / f"out-{path}")
        index = json.loads((out / "index.json").read_text())
        assert index["sources"]["s"]["read"] == len(ROWS) and index["sources"]["s"]["rejected"] == 0, (path, index["sources"])
        results[path] = sequences(out)
    first = results["rows.jsonl"]
    assert len(first) == len(ROWS)
    for path, seqs in results.items():
        assert seqs == first, f"{path} differs from rows.jsonl"


def test_text_files_and_lines(tokenmill_bin, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("First document.\nIts second line.\n", encoding="utf-8")
    (tmp_path / "docs" / "b.txt.zst").write_bytes(zstandard.ZstdCompressor().compress("Second document.".encode()))
    out = cli.build(tokenmill_bin, spec(tmp_path, "docs/*.txt*", mapping={"text": "text"}), tmp_path / "o1")
    assert json.loads((out / "index.json").read_text())["sources"]["s"]["read"] == 2
    (tmp_path / "l.txt").write_text("one\n\ntwo\r\nthree", encoding="utf-8")
    out = cli.build(tokenmill_bin, spec(tmp_path, "l.txt", mapping={"text": "text"}, fmt="lines"), tmp_path / "o2")
    assert json.loads((out / "index.json").read_text())["sources"]["s"]["read"] == 3


def failure(tokenmill_bin, spec_path, out):
    r = cli.run(tokenmill_bin, "build", spec_path, "--out", out, "--quiet", check=False)
    return r.returncode, r.stderr.decode()


@pytest.mark.parametrize("name,damage", [
    ("rows.jsonl.gz", lambda b: b[: len(b) // 2]),
    ("rows.jsonl.zst", lambda b: b[: len(b) - 7]),
    ("rows.jsonl.gz", lambda b: b""),
    ("rows.jsonl.zst", lambda b: b[:4] + bytes([b[4] ^ 0xFF]) + b[5:]),
])
def test_damaged_compressed_inputs_fail_naming_the_file(tokenmill_bin, tmp_path, name, damage):
    write_formats(tmp_path)
    p = tmp_path / name
    p.write_bytes(damage(p.read_bytes()))
    code, err = failure(tokenmill_bin, spec(tmp_path, name), tmp_path / "out")
    assert code == 65 and name in err and ("damaged" in err or "truncated" in err), (code, err)


@pytest.mark.parametrize("body,row,reason", [
    ('instruction,input,output\r\n"a","b","c"\r\n"x","y"\r\n', 2, "2 fields"),
    ('instruction,input,output\na,b,c\nd,e,f,g\n', 2, "4 fields"),
    ('instruction,input,output\na,"b"x,c\n', 1, "after the closing quote"),
])
def test_malformed_csv_rows(tokenmill_bin, tmp_path, body, row, reason):
    (tmp_path / "bad.csv").write_text(body, encoding="utf-8")
    code, err = failure(tokenmill_bin, spec(tmp_path, "bad.csv"), tmp_path / "out")
    assert code == 65 and f"bad.csv:{row}" in err and reason in err, (code, err)


def test_csv_unclosed_quote_stops_even_when_skipping(tokenmill_bin, tmp_path):
    (tmp_path / "q.csv").write_text('instruction,input,output\na,b,c\n"open,b,c\nd,e,f\n', encoding="utf-8")
    code, err = failure(tokenmill_bin, spec(tmp_path, "q.csv", extra={"on_error": "skip"}), tmp_path / "out")
    assert code == 65 and "q.csv:2" in err and "not closed" in err, (code, err)


def test_csv_bad_rows_are_rejected_and_counted_when_skipping(tokenmill_bin, tmp_path):
    (tmp_path / "s.csv").write_text('instruction,input,output\na,b,c\nonly,two\nd,e,f\n', encoding="utf-8")
    out = cli.build(tokenmill_bin, spec(tmp_path, "s.csv", extra={"on_error": "skip"}), tmp_path / "out")
    counts = json.loads((out / "index.json").read_text())["sources"]["s"]
    assert counts["read"] == 2 and counts["rejected"] == 1
    rejects = [json.loads(l) for l in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], "2 fields" in r["reason"]) for r in rejects] == [(2, True)]
