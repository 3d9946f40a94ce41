"""Check a built dataset directory against the Python reference of its spec (tests/reference.py).

:func:`check_build` reads every sequence with :class:`tokenmill.Dataset`, cuts it into
documents at ``cu_seqlens`` and compares them, as multisets of (tokens, loss mask), with
the spec's kept records rendered in Python; it also checks each packing strategy's own
invariants and the counts in ``index.json``. Failures say which document differs and
show both decoded texts, so a mismatch can be read without a debugger.
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
    """A tiktoken encoding that decodes every id of the build, and the special-token ids."""
    tokenizer = index["tokenizer"]
    name = tokenizer["name"]
    base = constructor_args(name)["special_tokens"]
    specials = dict(tokenizer.get("special_tokens", {}))
    specials.setdefault("<|endoftext|>", tokenizer["eos_id"])
    extra = tuple(sorted((k, v) for k, v in specials.items() if base.get(k) != v))
    return get_encoding(name, extra), specials


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


def check_documents_render_the_template(
    docs: Sequence[reference.Doc], encoding: Any, end_marker: str
) -> None:
    """Each rendered document decodes to the template text; its trained part to response + marker."""
    for doc in docs:
        assert encoding.decode_bytes(list(doc.tokens)).decode("utf-8") == doc.text
        trained = [t for t, m in zip(doc.tokens, doc.mask) if m]
        want = doc.rec.text + "<|endoftext|>" if doc.rec.kind == "text" else doc.rec.response + end_marker
        assert encoding.decode_bytes(trained).decode("utf-8") == want == doc.target
        if doc.rec.kind == "text":
            assert all(doc.mask), "text records are trained on every token"


def check_build(spec_path: Path, directory: Path) -> dict:
    """Compare a build with the reference; return a summary for the caller's own asserts."""
    spec = reference.load_spec(spec_path)
    index = json.loads((directory / "index.json").read_text(encoding="utf-8"))
    pack = spec["pack"]
    seq_len, strategy = pack["seq_len"], pack.get("strategy", "none")
    overflow = pack.get("overflow", "split")
    assert index["tokenizer"]["name"] == spec["tokenizer"]
    assert index["template"] == spec["template"]
    assert index["seq_len"] == seq_len
    assert index["pack"]["strategy"] == strategy
    encoding, specials = encoding_for(index)
    if spec["template"] == "chatml":
        check_chat_markers(index)
    if spec["template"] == "llama3":
        check_llama3_tokens(index)
    end_marker = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>"}.get(spec["template"], "<|endoftext|>")

    renderer = reference.Renderer(spec["template"], encoding, specials)
    records, counts = reference.kept_records(spec_path, tokens_of=lambda rec: len(renderer.render(rec).tokens))
    docs = [renderer.render(rec) for rec in records]
    check_documents_render_the_template(docs, encoding, end_marker)
    written = reference.count_overflow(docs, counts, seq_len, strategy, overflow)
    for source in spec["sources"]:
        name = source["name"]
        got = index["sources"][name]
        for key in ("read", "rejected", "exact_dup", "subsampled", "kept", "overflow_dropped", "truncated"):
            assert got[key] == counts[name, key], (
                f"index.json sources.{name}.{key}: {got[key]}, reference {counts[name, key]}"
            )
        lost = sum(got[k] for k in ("filtered", "exact_dup", "near_dup", "decontaminated", "over_take", "subsampled",
                                    "overflow_dropped", "truncated", "kept"))
        assert got["records"] == lost, f"index.json sources.{name}: the buckets do not add up: {got}"
        tokens = sum(written(d) for d in docs if d.rec.source == name)
        assert got["tokens"] == tokens, (
            f"index.json sources.{name}.tokens: {got['tokens']}, reference {tokens}"
        )

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
