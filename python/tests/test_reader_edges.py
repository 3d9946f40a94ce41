"""Reader edges (issue 18): a UTF-8 byte order mark at the start of any text input is
skipped and counted; under on_error: skip a JSON array resynchronises after damage inside
or between elements; CSV follows RFC 4180 (a quote inside an unquoted field is bad input
unless csv_quotes is lenient, which reads it as Python's csv module does); a column the
mapping reads but the header lacks is a spec error, rows or no rows.

Oracles: the same records without the mark (token for token), Python's json module on
the elements that survive, Python's csv module for the lenient reading."""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
import zstandard

import cli
from test_ingest_formats import MAP, ROWS, sequences, spec

pytestmark = pytest.mark.binary

BOM = b"\xef\xbb\xbf"


def failure(binary: Path, spec_path: Path, out: Path) -> tuple[int, str]:
    r = cli.run(binary, "build", spec_path, "--out", out, "--quiet", check=False)
    return r.returncode, r.stderr.decode(errors="replace")


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def jsonl_bytes() -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()


def csv_bytes() -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["instruction", "input", "output"], lineterminator="\r\n")
    w.writeheader()
    w.writerows(ROWS)
    return buf.getvalue().encode()


FILES = {
    "rows.jsonl": jsonl_bytes,
    "rows.jsonl.gz": lambda: gzip.compress(jsonl_bytes()),
    "rows.jsonl.zst": lambda: zstandard.ZstdCompressor().compress(jsonl_bytes()),
    "rows.json": lambda: json.dumps(ROWS, ensure_ascii=False, indent=1).encode(),
    "rows.csv": csv_bytes,
    "rows.csv.gz": lambda: gzip.compress(csv_bytes()),
}


def with_bom(name: str, data: bytes) -> bytes:
    """The file as a writer that puts a mark first would store it (inside the compression)."""
    if name.endswith(".gz"):
        return gzip.compress(BOM + gzip.decompress(data))
    if name.endswith(".zst"):
        return zstandard.ZstdCompressor().compress(BOM + zstandard.ZstdDecompressor().decompress(data))
    return BOM + data


@pytest.mark.parametrize("name", list(FILES))
def test_byte_order_mark_is_skipped_and_counted(tokenmill_bin, tmp_path, name):
    plain, marked = tmp_path / "plain", tmp_path / "marked"
    plain.mkdir(), marked.mkdir()
    (plain / name).write_bytes(FILES[name]())
    (marked / name).write_bytes(with_bom(name, FILES[name]()))
    want = sequences(cli.build(tokenmill_bin, spec(plain, name), plain / "out"))
    out = cli.build(tokenmill_bin, spec(marked, name), marked / "out")
    assert sequences(out) == want
    assert report(out)["byte_order_marks"] == {"s": 1}
    assert "byte_order_marks" not in report(plain / "out"), "a file without a mark counts none"


def test_byte_order_mark_in_text_lines_and_cut_jsonl(tokenmill_bin, tmp_path):
    """`lines` and `text` files, and a JSONL file cut into many units (only the first
    unit starts at the mark)."""
    (tmp_path / "a.txt").write_bytes(BOM + "first line of text here\nsecond line\n".encode())
    for fmt in ("lines", "text"):
        out = cli.build(tokenmill_bin, spec(tmp_path, "a.txt", name=fmt, mapping={"text": "text"}, fmt=fmt), tmp_path / f"out-{fmt}")
        from tiktoken_offline import get_encoding

        enc = get_encoding("cl100k_base", extra_special=(("<|im_start|>", 100264), ("<|im_end|>", 100265)))
        text = "".join(enc.decode(s) for s in sequences(out))
        assert "first line of text here" in text and "\ufeff" not in text, text
        assert report(out)["byte_order_marks"] == {fmt: 1}
    rows = [{"instruction": f"question {i}", "input": "", "output": f"answer number {i}"} for i in range(400)]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    (tmp_path / "big.jsonl").write_bytes(BOM + body)
    (tmp_path / "ref.jsonl").write_bytes(body)
    env = dict(os.environ, TOKENMILL_UNIT_BYTES="1500")
    outs = {}
    for name in ("big.jsonl", "ref.jsonl"):
        p = spec(tmp_path, name, name="cut")
        r = subprocess.run([str(tokenmill_bin), "build", str(p), "--out", str(tmp_path / f"o-{name}"), "--quiet"],
                           capture_output=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr.decode()
        outs[name] = tmp_path / f"o-{name}"
    assert sequences(outs["big.jsonl"]) == sequences(outs["ref.jsonl"])
    assert report(outs["big.jsonl"])["byte_order_marks"] == {"cut": 1}


# -- JSON arrays: resynchronising after damage ---------------------------------------


GOOD = [{"instruction": f"q{i} words here", "input": "", "output": f"a{i} more words"} for i in range(6)]


def array_text(damage: dict[int, str]) -> str:
    """A pretty-printed array of GOOD whose element i is replaced by damage[i] (raw text)."""
    parts = [damage.get(i, json.dumps(r)) for i, r in enumerate(GOOD)]
    return "[\n" + ",\n".join(parts) + "\n]\n"


DAMAGES = {
    # between elements: a stray closing brace after element 1
    "extra brace": ({1: json.dumps(GOOD[1]) + "}"}, [0, 1, 2, 3, 4, 5]),
    # inside an element: a bare word for a value
    "bad value": ({2: '{"instruction": oops, "input": "", "output": "x"}'}, [0, 1, 3, 4, 5]),
    # two damaged elements in a row, then good ones
    "two in a row": ({1: '{"instruction": "q1", "output": }', 2: '{"instruction" "q2"}'}, [0, 3, 4, 5]),
    # a missing comma between two elements: the first is whole and kept, the second is
    # skipped with the damage
    "missing comma": ({3: json.dumps(GOOD[3]) + " " + json.dumps(GOOD[3])}, [0, 1, 2, 3, 4, 5]),
}


@pytest.mark.parametrize("grouped", [False, True], ids=["streamed", "whole file"])
@pytest.mark.parametrize("case", list(DAMAGES))
def test_json_array_resynchronises_under_skip(tokenmill_bin, tmp_path, case, grouped):
    """The damaged array gives exactly the records of the array without its damaged
    elements (Python's json reads that one), one reject a damaged stretch. Plain sources
    stream JSON arrays; `group_by` sources read the whole file (the other reader)."""
    damage, kept = DAMAGES[case]
    (tmp_path / "a.json").write_text(array_text(damage), encoding="utf-8")
    survivors = [GOOD[i] for i in kept]
    (tmp_path / "want.json").write_text(json.dumps(survivors), encoding="utf-8")
    assert json.loads((tmp_path / "want.json").read_text()) == survivors
    # Grouped: each row its own conversation of one assistant turn after a user turn
    # given by a system-free mapping (group by the instruction, content the output).
    mapping = MAP if not grouped else {"group_by": "instruction", "content": "output", "role": "input",
                                       "roles": {"": "assistant"}}
    extra = {"on_error": "skip"}
    got = cli.build(tokenmill_bin, spec(tmp_path, "a.json", mapping=mapping, extra=extra), tmp_path / "got")
    want = cli.build(tokenmill_bin, spec(tmp_path, "want.json", mapping=mapping, extra=extra), tmp_path / "want")
    assert sequences(got) == sequences(want)
    counts = json.loads((got / "index.json").read_text())["sources"]["s"]
    want_counts = json.loads((want / "index.json").read_text())["sources"]["s"]
    rejects = [json.loads(l) for l in (got / "rejects.jsonl").read_text().splitlines()]
    damaged = [r for r in rejects if "skipped to line" in r["reason"]]
    assert counts["kept"] == want_counts["kept"] and damaged
    assert counts["rejected"] == want_counts["rejected"] + len(damaged)


def test_json_array_damage_fails_without_skip(tokenmill_bin, tmp_path):
    (tmp_path / "a.json").write_text(array_text(DAMAGES["extra brace"][0]), encoding="utf-8")
    code, err = failure(tokenmill_bin, spec(tmp_path, "a.json"), tmp_path / "out")
    assert code == 65 and "a.json:" in err and "between array elements" in err, (code, err)


def test_json_array_that_cannot_resynchronise_says_why(tokenmill_bin, tmp_path):
    (tmp_path / "a.json").write_text('[{"instruction": "a b", "input": "", "output": "c d"}, 17 oops 18]', encoding="utf-8")
    out = cli.build(tokenmill_bin, spec(tmp_path, "a.json", extra={"on_error": "skip"}), tmp_path / "out")
    rejects = [json.loads(l) for l in (out / "rejects.jsonl").read_text().splitlines()]
    # 17 is an element (not an object: a bad row); "oops" is where the array breaks.
    assert [r["reason"].startswith("row is") for r in rejects] == [True, False], rejects
    assert "the rest of the file was not read (no later element" in rejects[1]["reason"], rejects
    assert json.loads((out / "index.json").read_text())["sources"]["s"]["kept"] == 1


# -- CSV: RFC 4180, leniency, header columns ------------------------------------------


STRAY = 'instruction,input,output\nfirst question,,first answer\n1,This "quotes" must be escaped,3\nthird question,,third answer\n'


def test_csv_quote_inside_unquoted_field_is_bad_input(tokenmill_bin, tmp_path):
    (tmp_path / "q.csv").write_text(STRAY, encoding="utf-8")
    code, err = failure(tokenmill_bin, spec(tmp_path, "q.csv"), tmp_path / "out")
    assert code == 65 and "q.csv:2" in err and "quote inside an unquoted field" in err, (code, err)
    out = cli.build(tokenmill_bin, spec(tmp_path, "q.csv", extra={"on_error": "skip"}), tmp_path / "skip")
    counts = json.loads((out / "index.json").read_text())["sources"]["s"]
    assert (counts["kept"], counts["rejected"]) == (2, 1), "reading goes on at the next row"


def test_csv_lenient_quotes_read_as_pythons_csv(tokenmill_bin, tmp_path):
    (tmp_path / "q.csv").write_text(STRAY, encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(STRAY)))
    assert rows[1]["input"] == 'This "quotes" must be escaped'
    (tmp_path / "want.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    got = cli.build(tokenmill_bin, spec(tmp_path, "q.csv", extra={"csv_quotes": "lenient"}), tmp_path / "got")
    want = cli.build(tokenmill_bin, spec(tmp_path, "want.jsonl"), tmp_path / "want")
    assert sequences(got) == sequences(want)


@pytest.mark.parametrize("body", ["instruction,output\n", "instruction,output\nq,a\n"], ids=["no rows", "rows"])
def test_csv_header_without_a_mapped_column_is_a_spec_error(tokenmill_bin, tmp_path, body):
    (tmp_path / "h.csv").write_text(body, encoding="utf-8")
    code, err = failure(tokenmill_bin, spec(tmp_path, "h.csv"), tmp_path / "out")
    assert code == 2 and "h.csv" in err and "no column 'input'" in err and "'instruction', 'output'" in err, (code, err)


# -- mapping: pick by another field, replace substrings --------------------------------


def test_pick_require_and_replace_on_a_small_file(tokenmill_bin, tmp_path):
    rows = [
        {"q": "first question here", "r0": "zero_comma_ answer", "r1": "one answer", "by": 0, "s0": True, "s1": False},
        {"q": "second question here", "r0": "zero answer", "r1": "one_comma_ answer", "by": "1", "s0": False, "s1": "True"},
        {"q": "third question here", "r0": "zero answer", "r1": "one answer", "by": 1, "s0": True, "s1": False},
        {"q": "fourth question here", "r0": "zero answer", "r1": "one answer", "by": 2, "s0": True, "s1": True},
        {"q": "fifth question here", "r0": "zero answer", "r1": "one answer", "by": 0, "s0": "maybe", "s1": True},
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    mapping = {"prompt": "q", "response": {"pick": ["r0", "r1"], "by": "by", "require": ["s0", "s1"], "reason": "unsafe",
                                           "replace": {"_comma_": ","}}}
    out = cli.build(tokenmill_bin, spec(tmp_path, "p.jsonl", mapping=mapping, extra={"on_error": "skip"}), tmp_path / "out")
    counts = json.loads((out / "index.json").read_text())["sources"]["s"]
    assert (counts["kept"], counts["filtered"], counts["rejected"]) == (2, 1, 2), counts
    assert counts["filter_reasons"] == {"unsafe": 1}
    reasons = sorted(json.loads(l)["reason"] for l in (out / "rejects.jsonl").read_text().splitlines())
    assert "expected a number from 0 to 1" in reasons[0] and "expected true or false" in reasons[1], reasons
    (tmp_path / "w.jsonl").write_text(json.dumps({"q": rows[0]["q"], "a": "zero, answer"}) + "\n"
                                      + json.dumps({"q": rows[1]["q"], "a": "one, answer"}) + "\n", encoding="utf-8")
    want = cli.build(tokenmill_bin, spec(tmp_path, "w.jsonl", mapping={"prompt": "q", "response": "a"}), tmp_path / "want")
    assert sequences(out) == sequences(want)


@pytest.mark.parametrize("value, named", [
    ({"pick": ["a"], "by": "k"}, "two or more"),
    ({"pick": ["a", "b"]}, "by"),
    ({"pick": ["a", "b"], "by": "k", "require": ["x"]}, "one field name per choice"),
    ({"field": "a", "by": "k"}, "only with 'pick'"),
    ({"field": "a", "replace": {"x": 1}}, "replace"),
    ({"field": "a", "template": "{a}"}, "one of 'field' or 'template'"),
])
def test_pick_and_replace_spec_errors(tokenmill_bin, tmp_path, value, named):
    (tmp_path / "p.jsonl").write_text(json.dumps({"q": "x y", "a": "z"}) + "\n", encoding="utf-8")
    code, err = failure(tokenmill_bin, spec(tmp_path, "p.jsonl", mapping={"prompt": "q", "response": value}), tmp_path / "out")
    assert code == 2 and "map.response" in err and named in err, (code, err)
