"""The Python reference of a build (tests/reference.py, tests/buildcheck.py) checks itself.

A "build" made in Python from the reference, written with tests/shardwriter.py, must
pass check_build for every template and strategy, and a single changed token must fail
it. This keeps the checker honest before (and independent of) the Swift binary.
"""

from __future__ import annotations

import json

import buildcheck
import pytest
import reference
import shardwriter
import specdata
from tiktoken_offline import constructor_args


def test_normalize_follows_the_spec_order_and_white_space():
    config = {"unicode": "NFC", "newlines": True, "strip_control": True, "trim": True}
    assert reference.normalize("a\r\nb\rc\n", config) == "a\nb\nc"
    assert reference.normalize("e\u0301", config) == "\u00e9"
    assert reference.normalize("a\x00b\x07c\x1b[0m\td\x7f\x85", config) == "ab c[0m\td".replace(" ", "")
    assert reference.normalize("\u3000\u00a0\u2028 x \u200b", config) == "x \u200b"  # ZWSP is not White_Space
    assert reference.normalize(" \x1c x ", {"trim": True}) == "\x1c x"  # str.strip() would eat U+001C
    assert reference.normalize(" x\r\n", {}) == " x\r\n"


def test_best_fit_decreasing_prefers_the_tightest_then_the_earliest_sequence():
    assert reference.best_fit_bins([5, 5, 5], 10) == [(5, 5), (5,)]
    assert reference.best_fit_bins([6, 3, 4, 4], 10) == [(4, 6), (3, 4)]
    # 7 opens #0 (room 3), 6 opens #1 (room 4); 3 fits both, goes to the tighter #0.
    assert reference.best_fit_bins([7, 6, 3], 10) == [(3, 7), (6,)]
    assert reference.best_fit_bins([2, 2], 10) == [(2, 2)]


def fake_build(spec_path, out):
    """What a correct build of ``spec_path`` writes, produced by the reference itself."""
    spec = reference.load_spec(spec_path)
    name, template = spec["tokenizer"], spec["template"]
    args = constructor_args(name)
    top = max(max(args["mergeable_ranks"].values()), *args["special_tokens"].values())
    specials = {"<|endoftext|>": args["special_tokens"]["<|endoftext|>"]}
    if template == "chatml":
        start, end = buildcheck.CHAT_MARKER_IDS.get(name, (top + 1, top + 2))
        specials.update({"<|im_start|>": start, "<|im_end|>": end})
    vocab_size = max(top, *specials.values()) + 1
    eos = specials["<|endoftext|>"]
    tokenizer = {"name": name, "eos_id": eos, "pad_id": eos, "special_tokens": specials}
    encoding, _ = buildcheck.encoding_for({"tokenizer": tokenizer})
    records, counts = reference.kept_records(spec_path)
    docs = [reference.Renderer(template, encoding, specials).render(r) for r in records]
    pack = spec["pack"]
    seq_len, strategy = pack["seq_len"], pack["strategy"]
    if strategy == "concat":
        sequences = [
            (list(t), list(m), list(s))
            for t, m, s in reference.concat_sequences([(d.tokens, d.mask) for d in docs], seq_len)
        ]
    else:
        pieces = reference.apply_overflow(docs, seq_len, pack.get("overflow", "split"))
        groups = [[i] for i in range(len(pieces))]
        if strategy == "best-fit":
            groups = reference.best_fit_pack([len(p[0]) for p in pieces], seq_len)
        sequences = []
        for group in groups:
            tokens, mask, starts = [], [], []
            for i in group:
                starts.append(len(tokens))
                tokens += pieces[i][0]
                mask += pieces[i][1]
            sequences.append((tokens, mask, starts))
        if strategy == "pad":
            sequences = [reference.pad_sequence(p, seq_len, eos) for p in pieces]
    index = shardwriter.write_dataset(
        out, {"train": [sequences[:7], sequences[7:]]}, vocab_size, chunk_records=3, strategy=strategy, seq_len=seq_len
    )
    index["tokenizer"].update(tokenizer, vocab_size=vocab_size)
    index.update(
        template=template, seq_len=seq_len, pack={"strategy": strategy, "overflow": pack["overflow"]}
    )
    written = reference.count_overflow(docs, counts, seq_len, strategy, pack.get("overflow", "split"))
    buckets = ("filtered", "exact_dup", "near_dup", "decontaminated", "over_take", "subsampled", "overflow_dropped", "truncated", "kept")
    index["sources"] = {
        s["name"]: {
            **{k: counts[s["name"], k] for k in ("read", "rejected") + buckets},
            "records": sum(counts[s["name"], k] for k in buckets),
            "tokens": sum(written(d) for d in docs if d.rec.source == s["name"]),
        }
        for s in spec["sources"]
    }
    (out / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return sequences


@pytest.mark.parametrize(
    "template, tokenizer",
    [("plain", "cl100k_base"), ("alpaca", "gpt2"), ("chatml", "o200k_base"), ("chatml", "p50k_base")],
)
@pytest.mark.parametrize("strategy", ["none", "concat", "best-fit", "pad"])
def test_reference_build_passes_the_checker(tmp_path, template, tokenizer, strategy):
    spec = specdata.write_spec(tmp_path, template, tokenizer, strategy)
    fake_build(spec, tmp_path / "out")
    summary = buildcheck.check_build(spec, tmp_path / "out")
    # Rows minus the duplicates specdata plants and its one empty response.
    assert len(summary["docs"]) == (38 - 3 - 1) + (14 - 1)
    assert any(len(d.tokens) > specdata.SEQ_LEN for d in summary["docs"])


@pytest.mark.parametrize("strategy", ["none", "concat", "best-fit", "pad"])
def test_checker_notices_one_changed_token(tmp_path, strategy):
    spec = specdata.write_spec(tmp_path, "chatml", "cl100k_base", strategy)
    sequences = fake_build(spec, tmp_path / "out")
    sequences[3][0][5] = 11  # any valid id that differs
    shardwriter_index = json.loads((tmp_path / "out" / "index.json").read_text())
    shardwriter.write_dataset(
        tmp_path / "out", {"train": [sequences[:7], sequences[7:]]}, 100277, chunk_records=3, strategy=strategy,
        seq_len=specdata.SEQ_LEN,
    )
    fixed = json.loads((tmp_path / "out" / "index.json").read_text())
    shardwriter_index["splits"] = fixed["splits"]
    (tmp_path / "out" / "index.json").write_text(json.dumps(shardwriter_index))
    with pytest.raises(AssertionError):
        buildcheck.check_build(spec, tmp_path / "out")
