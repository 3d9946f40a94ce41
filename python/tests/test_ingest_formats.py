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


# -- chat lists ------------------------------------------------------------------------------------

def chat_spec(folder: Path, path: str, mapping: dict, extra=None) -> Path:
    return spec(folder, path, name="c", mapping=mapping, extra=extra)


def test_single_turn_chats_equal_instruction_records(tokenmill_bin, tmp_path):
    """ShareGPT (`conversations`, `from`/`value`, human/gpt) and OpenAI (`messages`,
    `role`/`content`) lists of one exchange give the sequences of the instruction pair."""
    pairs = [("What is 2+2?", "4."), ("Name a color.", "Blue."), ("你好", "你好！")]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps({"q": q, "a": a}, ensure_ascii=False) + "\n" for q, a in pairs), encoding="utf-8")
    (tmp_path / "sharegpt.json").write_text(json.dumps([{"id": k, "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
                                                        for k, (q, a) in enumerate(pairs)], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "openai.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress("".join(
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}, ensure_ascii=False) + "\n"
        for q, a in pairs).encode()))
    want = sequences(cli.build(tokenmill_bin, spec(tmp_path, "pairs.jsonl", mapping={"prompt": "q", "response": "a"}), tmp_path / "o0"))
    got1 = sequences(cli.build(tokenmill_bin, chat_spec(tmp_path, "sharegpt.json", {"messages": "conversations", "role": "from", "content": "value"}), tmp_path / "o1"))
    got2 = sequences(cli.build(tokenmill_bin, chat_spec(tmp_path, "openai.jsonl.zst", {"messages": "messages"}), tmp_path / "o2"))
    assert len(want) == 3 and got1 == want and got2 == want


def test_multi_turn_chat_renders_every_turn(tokenmill_bin, tmp_path):
    from tiktoken_offline import get_encoding

    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "See you."}]
    (tmp_path / "m.jsonl").write_text(json.dumps({"messages": conv}) + "\n", encoding="utf-8")
    out = cli.build(tokenmill_bin, chat_spec(tmp_path, "m.jsonl", {"messages": "messages"}), tmp_path / "o")
    enc = get_encoding("cl100k_base", extra_special=(("<|im_start|>", 100264), ("<|im_end|>", 100265)))
    text = enc.decode(sequences(out)[0])
    want = ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nSee you.<|im_end|>\n")
    assert text == want


@pytest.mark.parametrize("messages,reason", [
    ([{"role": "user", "content": "q"}], "no assistant turn"),
    ([{"role": "narrator", "content": "x"}, {"role": "assistant", "content": "a"}], "unknown role 'narrator'"),
    ([{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}], "expected a string"),
    ([{"role": "user", "content": "q"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}], "system message after"),
    ("not a list", "expected a list of messages"),
])
def test_bad_chats_are_named_and_skippable(tokenmill_bin, tmp_path, messages, reason):
    rows = [{"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "fine"}]}, {"messages": messages}]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, err = failure(tokenmill_bin, chat_spec(tmp_path, "b.jsonl", {"messages": "messages"}), tmp_path / "out")
    assert code == 65 and "b.jsonl:2" in err and reason in err, (code, err)
    out = cli.build(tokenmill_bin, chat_spec(tmp_path, "b.jsonl", {"messages": "messages"}, extra={"on_error": "skip"}), tmp_path / "out2")
    counts = json.loads((out / "index.json").read_text())["sources"]["c"]
    assert counts["read"] == 1 and counts["rejected"] == 1


def test_role_names_can_be_mapped(tokenmill_bin, tmp_path):
    (tmp_path / "r.jsonl").write_text(json.dumps({"m": [{"who": "Kunde", "say": "q"}, {"who": "Agent", "say": "a"}]}) + "\n", encoding="utf-8")
    out = cli.build(tokenmill_bin, chat_spec(tmp_path, "r.jsonl", {"messages": "m", "role": "who", "content": "say",
                                                                   "roles": {"Kunde": "user", "Agent": "assistant"}}), tmp_path / "o")
    assert json.loads((out / "index.json").read_text())["sources"]["c"]["read"] == 1


# -- row-per-turn sources (group_by / order_by) ------------------------------------------------------

def test_grouped_rows_become_conversations(tokenmill_bin, tmp_path):
    """Rows of one conversation, out of order and interleaved with another, come out as
    the conversation in order (numeric order: 10 after 9); a two-row group equals the
    instruction pair; a one-row group has no assistant turn and is rejected row by row."""
    rows = [("c2", "2", "Fine, thanks."), ("c1", "10", "ten"), ("c2", "1", "How are you?"), ("c3", "1", "alone")]
    rows += [("c1", str(k), f"turn {k}") for k in range(1, 10)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["conv_id", "idx", "text"])
    w.writerows(rows)
    (tmp_path / "turns.csv").write_text(buf.getvalue(), encoding="utf-8")
    mapping = {"group_by": "conv_id", "order_by": "idx", "content": "text"}
    code, err = failure(tokenmill_bin, spec(tmp_path, "turns.csv", mapping=mapping), tmp_path / "o0")
    assert code == 65 and "turns.csv:4" in err and "no assistant turn" in err, (code, err)
    out = cli.build(tokenmill_bin, spec(tmp_path, "turns.csv", mapping=mapping, extra={"on_error": "skip"}), tmp_path / "o")
    counts = json.loads((out / "index.json").read_text())["sources"]["s"]
    assert counts["read"] + counts["rejected"] == len(rows) and counts["rejected"] == 1 and counts["kept"] == 2, counts

    from tiktoken_offline import get_encoding
    enc = get_encoding("cl100k_base", extra_special=(("<|im_start|>", 100264), ("<|im_end|>", 100265)))
    texts = [enc.decode(s) for s in sequences(out)]
    # Conversations in order of first row: c2 first, then c1.
    assert texts[0] == "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\nFine, thanks.<|im_end|>\n"
    want = "".join(f"<|im_start|>{'user' if k % 2 else 'assistant'}\n{'turn ' + str(k) if k < 10 else 'ten'}<|im_end|>\n" for k in range(1, 11))
    assert texts[1] == want

    (tmp_path / "pair.jsonl").write_text(json.dumps({"q": "How are you?", "a": "Fine, thanks."}) + "\n", encoding="utf-8")
    pair = sequences(cli.build(tokenmill_bin, spec(tmp_path, "pair.jsonl", mapping={"prompt": "q", "response": "a"}), tmp_path / "p"))
    assert pair[0] == sequences(out)[0]


def test_grouped_rows_with_a_role_field(tokenmill_bin, tmp_path):
    rows = [{"dialog": 1, "n": 1, "speaker": "Narrator", "line": "Be kind."}, {"dialog": 1, "n": 2, "speaker": "A", "line": "Hi"},
            {"dialog": 1, "n": 3, "speaker": "B", "line": "Hello"}]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    mapping = {"group_by": "dialog", "order_by": "n", "content": "line", "role": "speaker",
               "roles": {"Narrator": "system", "A": "user", "B": "assistant"}}
    out = cli.build(tokenmill_bin, spec(tmp_path, "r.jsonl", mapping=mapping), tmp_path / "o")
    from tiktoken_offline import get_encoding
    enc = get_encoding("cl100k_base", extra_special=(("<|im_start|>", 100264), ("<|im_end|>", 100265)))
    assert enc.decode(sequences(out)[0]) == ("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                                             "<|im_start|>assistant\nHello<|im_end|>\n")


# -- bad input -------------------------------------------------------------------------------------

def test_invalid_utf8_is_repaired_and_counted_or_rejected(tokenmill_bin, tmp_path):
    (tmp_path / "u.jsonl").write_bytes(b'{"q": "fine", "a": "ok"}\n{"q": "bad \xff\xfe here", "a": "ok"}\n{"q": "lone \\ud800", "a": "x"}\n')
    (tmp_path / "u.csv").write_bytes(b'instruction,input,output\nfine,,ok\nbad \xc3,,ok\n')
    for path, m in [("u.jsonl", {"prompt": "q", "response": "a"}), ("u.csv", MAP)]:
        out = cli.build(tokenmill_bin, spec(tmp_path, path, mapping=m), tmp_path / f"r-{path}")
        counts = json.loads((out / "index.json").read_text())["sources"]["s"]
        assert counts["rejected"] == 0 and counts["repaired_utf8"] == (2 if path == "u.jsonl" else 1), counts
        code, err = failure(tokenmill_bin, spec(tmp_path, path, mapping=m, extra={"invalid_utf8": "reject"}), tmp_path / f"x-{path}")
        assert code == 65 and f"{path}:2" in err and "invalid UTF-8" in err, (code, err)
    from tiktoken_offline import get_encoding
    out = cli.build(tokenmill_bin, spec(tmp_path, "u.jsonl", mapping={"prompt": "q", "response": "a"}), tmp_path / "dec")
    enc = get_encoding("cl100k_base", extra_special=(("<|im_start|>", 100264), ("<|im_end|>", 100265)))
    assert "bad \ufffd\ufffd here" in enc.decode(sequences(out)[1])


@pytest.mark.parametrize("row,reason", [
    ('{"q": ["x"], "a": "x"}', "field 'q' is an array"),
    ('{"q": "x"}', "missing field 'a'"),
    ('{"q": "x", "a": "y"', "invalid JSON"),
    ('["q", "a"]', "expected an object"),
])
def test_bad_rows_name_file_line_and_reason(tokenmill_bin, tmp_path, row, reason):
    (tmp_path / "b.jsonl").write_text('{"q": "ok", "a": "fine"}\n' + row + "\n", encoding="utf-8")
    code, err = failure(tokenmill_bin, spec(tmp_path, "b.jsonl", mapping={"prompt": "q", "response": "a"}), tmp_path / "out")
    assert code == 65 and "b.jsonl:2" in err and reason in err, (code, err)


def test_empty_file_missing_path_and_a_huge_line(tokenmill_bin, tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n", encoding="utf-8")
    code, err = failure(tokenmill_bin, spec(tmp_path, "e.jsonl", mapping={"prompt": "q", "response": "a"}), tmp_path / "o1")
    assert code == 65 and "e.jsonl" in err and "empty" in err, (code, err)
    code, err = failure(tokenmill_bin, spec(tmp_path, "nope/*.jsonl", mapping={"prompt": "q", "response": "a"}), tmp_path / "o2")
    assert code == 2 and "sources[0].path" in err and "no file matches" in err, (code, err)
    # A 50 MB line (the mapped fields are small; an unmapped one is huge) is read whole.
    big = json.dumps({"q": "short", "a": "answer", "blob": "z" * 50_000_000}) + "\n"
    (tmp_path / "big.jsonl").write_text('{"q": "first", "a": "one"}\n' + big, encoding="utf-8")
    out = cli.build(tokenmill_bin, spec(tmp_path, "big.jsonl", mapping={"prompt": "q", "response": "a"}), tmp_path / "o3")
    assert json.loads((out / "index.json").read_text())["sources"]["s"]["read"] == 2


def test_min_words_and_non_text_ratio_filters(tokenmill_bin, tmp_path):
    """Each filter's removals are counted per source by reason; the expected reasons come
    from Python's own word split and Unicode categories."""
    import unicodedata

    rows = [("Tell me a story about a dragon.", "Once upon a time there was a dragon."), ("Hi", "Hello"),
            ("😀😀😀 ★★★ ☺☺", "✓✓✓ ✓✓"), ("Price: $5 + $6 = $11?", "Yes, that is $11."), ("Ok then", "Sure ♥")]
    (tmp_path / "f.jsonl").write_text("".join(json.dumps({"q": q, "a": a}, ensure_ascii=False) + "\n" for q, a in rows), encoding="utf-8")
    body = json.loads(spec(tmp_path, "f.jsonl", mapping={"prompt": "q", "response": "a"}).read_text())
    body["filter"] = {"min_words": 3, "max_non_text_ratio": 0.3}
    (tmp_path / "fs.json").write_text(json.dumps(body))
    out = cli.build(tokenmill_bin, tmp_path / "fs.json", tmp_path / "o")
    want = {}
    for q, a in rows:
        text = q + a
        words = len((q + " " + a).split())
        chars = [c for c in text if not c.isspace()]
        non_text = sum(1 for c in chars if unicodedata.category(c)[0] in "SC")
        reason = "min_words" if words < 3 else ("non_text_ratio" if non_text / len(chars) > 0.3 else None)
        if reason:
            want[reason] = want.get(reason, 0) + 1
    report = json.loads((out / "report.json").read_text())
    assert report["filter_reasons"]["s"] == want and want == {"min_words": 1, "non_text_ratio": 1}
    assert json.loads((out / "index.json").read_text())["sources"]["s"]["filtered"] == 2
