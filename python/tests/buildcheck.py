"""Check a built dataset directory against the Python reference of its spec (tests/reference.py).

:func:`check_build` reads every sequence with :class:`tokenmill.Dataset`, cuts it into
documents at ``cu_seqlens`` and compares them, as multisets of (tokens, loss mask), with
the spec's kept records rendered in Python; it also checks each packing strategy's own
invariants, the counts in ``index.json`` (read, rejected, records, repaired_utf8,
filtered and its filter_reasons, exact_dup, near_dup, decontaminated, subsampled, kept,
overflow buckets, tokens), its template name, the near dedup and decontamination files
(dedup-clusters.jsonl, report.json's ``near_dedup``, decontaminated.jsonl) line by line,
and the ids of EOS and of every special token the template emits (built-in or custom:
those a vocabulary lacks follow its last id, in the template's order). The reference
renders with those expected ids, so a build that used others fails.
Failures say which document differs and show both decoded texts, so a mismatch can be
read without a debugger.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import reference
from tiktoken_offline import constructor_args, get_encoding

from tokenmill import Dataset

# docs/TEMPLATES.md: the chat markers' ids on vocabularies that lack them.
CHAT_MARKER_IDS = {"cl100k_base": (100264, 100265), "o200k_base": (200264, 200265)}


def encoding_for(index: dict) -> tuple[Any, dict[str, int]]:
    """A tiktoken encoding that decodes every id of the build, and the special-token ids
    (every one index.json lists, which includes those the template added)."""
    tokenizer = index["tokenizer"]
    name = tokenizer["name"]
    base = constructor_args(name)["special_tokens"]
    specials = dict(tokenizer.get("special_tokens", {}))
    specials.setdefault("<|endoftext|>", tokenizer["eos_id"])
    extra = tuple(sorted((k, v) for k, v in specials.items() if base.get(k) != v))
    return get_encoding(name, extra), specials


def vocabulary_top(name: str) -> int:
    """The last id of a tiktoken vocabulary (ranks and its own special tokens)."""
    args = constructor_args(name)
    return max(max(args["mergeable_ranks"].values()), *args["special_tokens"].values())


def expected_tokenizer(tokenizer: str, template: reference.Template) -> tuple[dict[str, int], int]:
    """The ids of EOS and of every special token ``template`` emits, and the vocabulary
    size, as TEMPLATES.md and BuildContext.loadTokenizer (Pipeline/Stages.swift) give them:
    chatml's markers take OpenAI's chat ids (cl100k_base, o200k_base) or the two ids after
    the vocabulary; any other template's tokens keep the ids the vocabulary has and the
    rest follow its last id, in the order the template lists them."""
    try:
        base = constructor_args(tokenizer)["special_tokens"]
    except ValueError as error:
        raise reference.Unsupported(f"tokenizer {tokenizer!r} (only the tiktoken vocabularies are modelled)") from error
    top = vocabulary_top(tokenizer)
    ids = {"<|endoftext|>": base["<|endoftext|>"]}
    if template.kind == "chatml":
        start, end = CHAT_MARKER_IDS.get(tokenizer, (top + 1, top + 2))
        ids.update({"<|im_start|>": start, "<|im_end|>": end})
    else:
        following = top + 1
        for name in template.specials:
            if name in base:
                ids[name] = base[name]
            else:
                ids[name] = following
                following += 1
    return ids, max(top, *ids.values()) + 1


def check_special_tokens(index: dict, template: reference.Template) -> dict[str, int]:
    """index.json's tokenizer lists the template's tokens at the expected ids and a
    vocab_size that covers them; returns the expected ids (what the reference renders with)."""
    tokenizer = index["tokenizer"]
    want, vocab_size = expected_tokenizer(tokenizer["name"], template)
    got = {k: tokenizer["special_tokens"].get(k) for k in want}
    assert got == want, f"index.json special tokens {got}, expected {want} (TEMPLATES.md, Stages.swift loadTokenizer)"
    assert tokenizer["eos_id"] == want["<|endoftext|>"], f"eos_id {tokenizer['eos_id']}"
    assert tokenizer["vocab_size"] == vocab_size, f"vocab_size {tokenizer['vocab_size']}, expected {vocab_size}"
    base = constructor_args(tokenizer["name"])["special_tokens"]
    for k, v in base.items():
        assert tokenizer["special_tokens"].get(k) == v, f"the vocabulary's own {k} moved to {tokenizer['special_tokens'].get(k)}"
    return want


def check_chat_markers(index: dict) -> None:
    """``<|im_start|>``/``<|im_end|>`` ids follow TEMPLATES.md."""
    tokenizer = index["tokenizer"]
    specials = tokenizer["special_tokens"]
    name = tokenizer["name"]
    args = constructor_args(name)
    if name in CHAT_MARKER_IDS:
        want = CHAT_MARKER_IDS[name]
    else:  # gpt2, p50k_base: "the first two ids after the vocabulary"
        top = max(max(args["mergeable_ranks"].values()), *args["special_tokens"].values())
        want = (top + 1, top + 2)
    got = (specials.get("<|im_start|>"), specials.get("<|im_end|>"))
    assert got == want, f"{name}: <|im_start|>, <|im_end|> are {got}, TEMPLATES.md says {want}"
    assert tokenizer["vocab_size"] > max(want), "vocab_size must cover the chat markers"


LLAMA3_TOKENS = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


def check_llama3_tokens(index: dict) -> None:
    """On a tiktoken vocabulary, the Llama 3 chat tokens follow its last id, in order
    (TEMPLATES.md)."""
    tokenizer = index["tokenizer"]
    args = constructor_args(tokenizer["name"])
    top = max(max(args["mergeable_ranks"].values()), *args["special_tokens"].values())
    got = tuple(tokenizer["special_tokens"].get(k) for k in LLAMA3_TOKENS)
    assert got == tuple(range(top + 1, top + 5)), f"Llama 3 tokens are {got}, TEMPLATES.md says ids {top + 1}..{top + 4}"
    assert tokenizer["vocab_size"] == top + 5


def read_sequences(directory: Path, split: str = "train") -> list[dict]:
    """Every sequence of ``split``, as plain tuples and lists (after a full verify)."""
    with Dataset(directory, split) as ds:
        ds.verify()
        out = []
        for i in range(len(ds)):
            ex = ds[i]
            out.append(
                {
                    "tokens": tuple(ex["input_ids"].tolist()),
                    "mask": tuple(int(b) for b in ex["loss_mask"]),
                    "cu": ex["cu_seqlens"].tolist(),
                }
            )
            starts = ex["cu_seqlens"][:-1]
            assert ex["position_ids"][starts].tolist() == [0] * len(starts)
        return out


def strip_padding(sequences: Sequence[dict], seq_len: int, pad_id: int) -> tuple[list[dict], int]:
    """Under ``pad`` (FORMAT.md 1.2): every sequence holds seq_len tokens and 1 document, or 2
    whose second is padding (``pad_id``, loss 0). Returns the sequences without their
    padding, and the padding tokens."""
    out, padding = [], 0
    for k, seq in enumerate(sequences):
        assert len(seq["tokens"]) == seq_len, f"pad: sequence {k} holds {len(seq['tokens'])} tokens, not {seq_len}"
        assert len(seq["cu"]) in (2, 3), f"pad: sequence {k} has {len(seq['cu']) - 1} documents"
        if len(seq["cu"]) == 3:
            start = seq["cu"][1]
            assert set(seq["tokens"][start:]) == {pad_id}, f"pad: sequence {k} pads with other ids than {pad_id}"
            assert not any(seq["mask"][start:]), f"pad: sequence {k} trains on its padding"
            padding += seq_len - start
            seq = {"tokens": seq["tokens"][:start], "mask": seq["mask"][:start], "cu": seq["cu"][:2]}
        out.append(seq)
    return out, padding


def documents_of(sequences: Sequence[dict]) -> list[reference.Piece]:
    return [
        (seq["tokens"][a:b], seq["mask"][a:b]) for seq in sequences for a, b in zip(seq["cu"], seq["cu"][1:])
    ]


def describe(piece: reference.Piece, encoding: Any) -> str:
    tokens, mask = piece
    text = encoding.decode(list(tokens))
    trained = encoding.decode([t for t, m in zip(tokens, mask) if m])
    return (
        f"{len(tokens)} tokens\n  text:    {text[:300]!r}\n  trained: {trained[:200]!r}\n"
        f"  ids: {list(tokens[:40])}"
    )


def assert_same_multiset(got: Sequence, want: Sequence, what: str, encoding: Any, show=describe) -> None:
    """Multiset equality, reporting the first extra and the first missing element, decoded."""
    got_c, want_c = Counter(got), Counter(want)
    if got_c == want_c:
        return
    extra = list((got_c - want_c).elements())
    missing = list((want_c - got_c).elements())
    lines = [
        f"{what}: {len(got)} built vs {len(want)} expected; {len(extra)} unexpected, {len(missing)} missing"
    ]
    if extra:
        lines.append("first unexpected (built, not in the reference):\n  " + show(extra[0], encoding))
    if missing:
        # The expected element closest to the unexpected one, by common token prefix.
        target = extra[0][0] if extra else ()

        def prefix(item):
            return next(
                (k for k, (a, b) in enumerate(zip(item[0], target)) if a != b), min(len(item[0]), len(target))
            )

        nearest = max(missing, key=prefix)
        lines.append("closest missing (in the reference, not built):\n  " + show(nearest, encoding))
    raise AssertionError("\n".join(lines))


def assert_same_stream(got: Sequence[int], want: Sequence[int], what: str, encoding: Any) -> None:
    """List equality, reporting the first differing position with decoded context."""
    if list(got) == list(want):
        return
    k = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    lines = [f"{what}: {len(got)} built vs {len(want)} expected, first difference at {k}"]
    for label, seq in (("built", got), ("expected", want)):
        window = list(seq[max(0, k - 10) : k + 10])
        shown = f" {encoding.decode(window)!r}" if encoding is not None else ""
        lines.append(f"  {label}: {window}{shown}")
    raise AssertionError("\n".join(lines))


def expected_target(rec: reference.Rec, template: reference.Template) -> str | None:
    """What a built-in template trains on, said independently of its segments: a text
    record's text and EOS; else the content and end marker of every assistant turn (only
    the last one's under ``loss: last_turn``). None for custom templates."""
    if rec.kind == "text":
        return rec.text + "<|endoftext|>"
    if template.end_marker is None:
        return None
    turns = [c for r, c in rec.turns if r == reference.ASSISTANT]
    if template.loss == "last_turn":
        turns = turns[-1:]
    return "".join(c + template.end_marker for c in turns)


def check_documents_render_the_template(
    docs: Sequence[reference.Doc], encoding: Any, template: reference.Template
) -> None:
    """Each rendered document decodes to the template text; its trained part to the
    assistant turns' content plus their end markers (or the text plus EOS)."""
    for doc in docs:
        assert encoding.decode_bytes(list(doc.tokens)).decode("utf-8") == doc.text
        trained = [t for t, m in zip(doc.tokens, doc.mask) if m]
        assert encoding.decode_bytes(trained).decode("utf-8") == doc.target
        want = expected_target(doc.rec, template)
        if want is not None:
            assert doc.target == want, f"trained text {doc.target!r}, expected {want!r}"
        if doc.rec.kind == "text":
            assert all(doc.mask), "text records are trained on every token"


COUNTED = ("read", "rejected", "records", "repaired_utf8", "filtered", "exact_dup", "near_dup", "decontaminated",
           "subsampled", "kept", "overflow_dropped", "truncated")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_dedup_files(directory: Path, report: dict) -> None:
    """dedup-clusters.jsonl, report.json's ``near_dedup`` and decontaminated.jsonl say what
    the reference found (docs/DEDUP.md): the same clusters, kept and removed records (by
    source and line), each removed record's matched record and estimated similarity, the
    same bands, rows and pair counts; the same decontaminated records, eval lines and
    shingles. Similarities are fractions of equal signature values, exact in binary."""
    if "near" in report:
        want = report["near"]
        got = read_jsonl(directory / "dedup-clusters.jsonl")
        for k in range(max(len(got), len(want["clusters"]))):
            g = got[k] if k < len(got) else None
            w = want["clusters"][k] if k < len(want["clusters"]) else None
            assert g == w, (f"dedup-clusters.jsonl cluster {k} of {len(got)} (reference: {len(want['clusters'])}):\n"
                            f"  built:     {g}\n  reference: {w}")
        section = json.loads((directory / "report.json").read_text(encoding="utf-8"))["near_dedup"]
        for key in ("bands", "rows", "candidate_pairs", "confirmed_pairs"):
            assert section[key] == want[key], f"report.json near_dedup.{key}: {section[key]}, reference {want[key]}"
        assert abs(section["confirmed_at"] - want["confirmed_at"]) < 1e-12, (
            f"report.json near_dedup.confirmed_at: {section['confirmed_at']}, reference {want['confirmed_at']}")
        assert section["clusters"] == len(want["clusters"])
        assert section["removed"] == sum(len(c["removed"]) for c in want["clusters"])
    else:
        assert not (directory / "dedup-clusters.jsonl").exists(), "dedup-clusters.jsonl without dedup.near"
    if "decontaminated" in report:
        got = read_jsonl(directory / "decontaminated.jsonl")
        want = report["decontaminated"]
        for k in range(max(len(got), len(want))):
            g = got[k] if k < len(got) else None
            w = want[k] if k < len(want) else None
            assert g == w, (f"decontaminated.jsonl line {k + 1} of {len(got)} (reference: {len(want)}):\n"
                            f"  built:     {g}\n  reference: {w}")
    else:
        assert not (directory / "decontaminated.jsonl").exists(), "decontaminated.jsonl without decontaminate"


def check_build(spec_path: Path, directory: Path) -> dict:
    """Compare a build with the reference; return a summary for the caller's own asserts."""
    spec = reference.load_spec(spec_path)
    index = json.loads((directory / "index.json").read_text(encoding="utf-8"))
    pack = spec.get("pack", {})
    seq_len, strategy = pack.get("seq_len", 2048), pack.get("strategy", "best-fit")
    overflow = pack.get("overflow", "split")
    template = reference.parse_template(spec.get("template", "chatml"))
    assert index["tokenizer"]["name"] == spec.get("tokenizer", "cl100k_base")
    assert index["template"] == template.name, f"index.json template {index['template']!r}, expected {template.name!r}"
    assert index["seq_len"] == seq_len
    assert index["pack"]["strategy"] == strategy
    specials = check_special_tokens(index, template)
    encoding, _ = encoding_for(index)
    if template.kind == "chatml":
        check_chat_markers(index)
    if template.kind == "llama3":
        check_llama3_tokens(index)

    renderer = reference.Renderer(template, encoding, specials)
    dedup_report: dict = {}
    records, counts = reference.kept_records(spec_path, tokens_of=lambda rec: len(renderer.render(rec).tokens),
                                             trains=lambda rec: any(renderer.render(rec).mask), report=dedup_report)
    docs = [renderer.render(rec) for rec in records]
    check_documents_render_the_template(docs, encoding, template)
    written = reference.count_overflow(docs, counts, seq_len, strategy, overflow)
    for k, source in enumerate(spec["sources"]):
        name = source.get("name", f"source{k}")
        got = index["sources"][name]
        for key in COUNTED:
            assert got[key] == counts[name, key], (
                f"index.json sources.{name}.{key}: {got[key]}, reference {counts[name, key]}"
            )
        reasons = {r: n for (s, what, *rest), n in counts.items() if s == name and what == "reason" for r in rest if n}
        assert got.get("filter_reasons", {}) == reasons, (
            f"index.json sources.{name}.filter_reasons: {got.get('filter_reasons')}, reference {reasons}"
        )
        lost = sum(got[k] for k in ("filtered", "exact_dup", "near_dup", "decontaminated", "over_take", "subsampled",
                                    "overflow_dropped", "truncated", "kept"))
        assert got["records"] == lost, f"index.json sources.{name}: the buckets do not add up: {got}"
        tokens = sum(written(d) for d in docs if d.rec.source == name)
        assert got["tokens"] == tokens, (
            f"index.json sources.{name}.tokens: {got['tokens']}, reference {tokens}"
        )

    check_dedup_files(directory, dedup_report)

    splits = {name: read_sequences(directory, name) for name in index["splits"]}
    assert "train" in splits, "index.json has no train split"
    if not spec.get("split", {}).get("validation"):
        assert set(splits) == {"train"}, f"no split asked for, but index.json has {sorted(splits)}"
    shuffled = spec.get("output", {}).get("shuffle_seed") is not None
    padding_total = 0
    for name, sequences in splits.items():
        entry = index["splits"][name]
        got = sum(len(s["tokens"]) for s in sequences)
        assert got == entry["tokens"], f"split {name}: {got} tokens, index.json says otherwise"
        assert len(sequences) == entry["records"]
        padding = 0
        if strategy == "pad":
            sequences, padding = strip_padding(sequences, seq_len, index["tokenizer"]["pad_id"])
            splits[name] = sequences
        # documents: the document starts that are not padding (FORMAT.md 2.2).
        documents = sum(len(s["cu"]) - 1 for s in sequences)
        assert entry["documents"] == documents, f"split {name}: index.json documents {entry['documents']}, shards hold {documents}"
        assert entry["padding_tokens"] == padding, f"split {name}: index.json padding_tokens {entry['padding_tokens']}, shards hold {padding}"
        padding_total += padding
    source_tokens = sum(s["tokens"] for s in index["sources"].values())
    split_tokens = sum(s["tokens"] for s in index["splits"].values())
    assert source_tokens + padding_total == split_tokens, (
        f"sum of sources.*.tokens {source_tokens} + padding {padding_total} != sum of splits.*.tokens {split_tokens}"
    )

    if strategy == "concat":  # one split only (reference.load_spec refuses the rest)
        sequences = splits["train"]
        lengths = [len(s["tokens"]) for s in sequences]
        want = reference.concat_sequences([(d.tokens, d.mask) for d in docs], seq_len)
        got = [(s["tokens"], s["mask"], tuple(s["cu"][:-1])) for s in sequences]
        short = [n for n in lengths if n != seq_len]
        assert len(short) <= 1, f"concat: {len(short)} sequences shorter than {seq_len}"
        if not shuffled:
            assert not short or lengths[-1] != seq_len, "concat: only the last sequence may be short"
            stream = [t for s in sequences for t in s["tokens"]]
            assert_same_stream(
                stream, [t for d in docs for t in d.tokens], "concat stream of tokens", encoding
            )
            masks = [m for s in sequences for m in s["mask"]]
            assert_same_stream(masks, [m for d in docs for m in d.mask], "concat stream of loss masks", None)
        assert_same_multiset(got, want, "concat sequences", encoding, show=lambda x, e: describe(x[:2], e))
        return {"sequences": sequences, "splits": splits, "docs": docs, "index": index}

    pieces = reference.apply_overflow(docs, seq_len, overflow)
    every_doc = [d for sequences in splits.values() for d in documents_of(sequences)]
    assert_same_multiset(every_doc, pieces, "documents (all splits)", encoding)
    if spec.get("split", {}).get("validation"):
        # Each record's split is its draw (docs/PIPELINE.md, "Shape"), computed here apart.
        held_out = [d for d in docs if reference.in_validation(d.rec, spec)]
        want = reference.apply_overflow(held_out, seq_len, overflow)
        got = documents_of(splits["validation"]) if "validation" in splits else []
        assert_same_multiset(got, want, "validation documents", encoding)
    for name, sequences in splits.items():
        lengths = [len(s["tokens"]) for s in sequences]
        assert max(lengths, default=0) <= seq_len, (
            f"split {name}: a sequence is longer than seq_len {seq_len}"
        )
        if strategy in ("none", "pad"):
            assert all(len(s["cu"]) == 2 for s in sequences), f"strategy {strategy}: one document a sequence"
        if strategy == "best-fit":
            # Packed per split, so best-fit-decreasing is replayed on each split's documents.
            got_bins = [tuple(sorted(np.diff(s["cu"]).tolist())) for s in sequences]
            want_bins = reference.best_fit_bins([len(p[0]) for p in documents_of(sequences)], seq_len)
            if shuffled:
                assert Counter(got_bins) == Counter(want_bins), f"split {name}: not best-fit-decreasing"
            else:
                assert got_bins == want_bins, f"split {name}: sequences not in best-fit-decreasing order"
    return {"sequences": splits["train"], "splits": splits, "docs": docs, "index": index}
