"""A slow, obviously-correct Python twin of a build: spec -> records -> documents -> sequences.

Written from docs/TEMPLATES.md, docs/FORMAT.md and /work/shared/DESIGN.md ("The build
spec") to check the Swift tool's output, never to be fast. It covers the part of the spec
the tests use: JSON/JSONL/CSV sources (optionally .gz/.zst) mapped to instruction or text
records, normalization, exact dedup, an optional chars filter, the templates plain /
alpaca / chatml, and the packing strategies none / concat / best-fit / pad (one item a
sequence, padded to seq_len) with every overflow mode. A ``split`` sends a record to
validation by its draw (docs/PIPELINE.md, "Shape": the source's name and the record's own
content, seeded). Anything else raises :class:`Unsupported`, and the
calling test skips with that message rather than checking against a guess.

Interpretations the documents leave open (also reported to the Swift side):
- ``map`` values containing ``{`` are templates, others field names; normalization runs
  on the mapped value, after template substitution (so ``"{instruction}\\n\\n{input}"``
  with an empty input trims to the instruction).
- A row whose mapped field is missing, null or not a string is bad input (rejected).
- ``system`` mapped to an empty string means absent (TEMPLATES.md); ``plain`` renders
  ``{system}\\n{prompt}\\n`` as one text segment (same loss flag, adjacent).
- ``filter.min_chars``/``max_chars`` bound the code points summed over all fields of the
  record (system included), and a conversation whose response is empty after
  normalization is filtered (``empty_response``) — docs/DECISIONS.md. ``min_chars``
  defaults to 1.
- ``read`` counts rows that became records; ``rejected`` the bad rows (read + rejected =
  rows of the input, DESIGN.md).
- Sources are read in spec order, each glob's matches in sorted order.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import struct
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import Any

import xxhash
import zstandard

# The Unicode White_Space property (PropList.txt), which is what "trim" strips.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
ALPACA_DEFAULT_SYSTEM = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
SUPPORTED_KEYS = {
    "name",
    "comment",
    "sources",
    "normalize",
    "filter",
    "dedup",
    "split",
    "sample",
    "mix",
    "tokenizer",
    "template",
    "pack",
    "output",
}


class Unsupported(Exception):
    """The spec uses something this reference does not model."""


@dataclass(frozen=True)
class Rec:
    """A normalized record. ``kind`` is ``"instruction"`` or ``"text"``; unused fields are ''."""

    source: str
    kind: str
    system: str = ""
    prompt: str = ""
    response: str = ""
    text: str = ""

    def key(self) -> str:
        """The exact-dedup key (docs/DEDUP.md, `on: all`): system, prompt, response or
        text joined by newlines, then NFKD, nonspacing marks and punctuation dropped,
        simple case folding, whitespace runs collapsed to one space, trimmed."""
        parts = [p for p in (self.system,) if p] + ([self.text] if self.kind == "text" else [self.prompt, self.response])
        return exact_key_text("\n".join(parts))


def content_hash(rec: Rec) -> int:
    """xxh3-64 of the record's kind and fields (docs/PIPELINE.md, "Shape")."""
    def field(tag: int, text: str) -> bytes:
        b = text.encode("utf-8")
        return bytes([tag]) + struct.pack("<Q", len(b)) + b

    if rec.kind == "text":
        data = bytes([1]) + field(0xFF, rec.system) + field(0xFE, rec.text)
    else:
        data = bytes([0]) + field(0xFF, rec.system) + field(0, rec.prompt) + field(1, rec.response) + field(0xFE, "")
    return xxhash.xxh3_64_intdigest(data)


def draw(salt: int, rec: Rec) -> float:
    """A record's draw in [0, 1): keyed on its source's name and its own content."""
    key = struct.pack("<Q", salt) + rec.source.encode("utf-8") + b"\0" + struct.pack("<Q", content_hash(rec))
    return (xxhash.xxh3_64_intdigest(key) >> 11) / float(1 << 53)


def in_validation(rec: Rec, spec: dict) -> bool:
    split = spec.get("split", {})
    fraction = split.get("validation", 0)
    return fraction > 0 and draw(split.get("seed", 0), rec) < fraction


KEY_SPACE = set(map(chr, [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))


def simple_fold(c: str) -> str:
    f = c.casefold()
    if len(f) == 1:
        return f
    return c.lower() if len(c.lower()) == 1 else c


def exact_key_text(text: str) -> str:
    out, pending = [], False
    for c in unicodedata.normalize("NFKD", text):
        if c in KEY_SPACE:
            pending = bool(out)
            continue
        cat = unicodedata.category(c)
        if cat == "Mn" or cat.startswith("P"):
            continue
        if pending:
            out.append(" ")
            pending = False
        out.append(simple_fold(c))
    return "".join(out)


@dataclass(frozen=True)
class Doc:
    """A rendered document: tokens, per-token loss, the rendered text and its trained-on part."""

    rec: Rec
    tokens: tuple[int, ...]
    mask: tuple[int, ...]
    text: str
    target: str


# -- normalization ------------------------------------------------------------------------------


def normalize_config(value) -> dict:
    """The spec's ``normalize`` as Tokenmill reads it: absent or ``true`` is every step with
    NFC, ``false`` none; in an object each step defaults to on, ``unicode`` to NFC."""
    if value is True:
        value = {}
    if value is False:
        return {}
    form = value.get("unicode", "NFC")
    return {"unicode": None if form == "none" else form, "newlines": value.get("newlines", True),
            "strip_control": value.get("strip_control", True), "trim": value.get("trim", True)}


def normalize(text: str, config: dict) -> str:
    """NFC (or the form named), CRLF/CR -> LF, drop Cc except \\n \\t, trim White_Space; in that order."""
    form = config.get("unicode")
    if form:
        text = unicodedata.normalize(form, text)
    if config.get("newlines"):
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if config.get("strip_control"):
        text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    if config.get("trim"):
        text = text.strip(WHITE_SPACE)
    return text


# -- sources ------------------------------------------------------------------------------------


def _decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


def read_rows(path: Path) -> Iterator[Any]:
    """The rows of one source file; a row that is not valid JSON comes back as None."""
    name = path.name.removesuffix(".gz").removesuffix(".zst")
    text = _decompressed(path).decode("utf-8")
    if name.endswith(".jsonl"):
        for line in text.split("\n"):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    yield None
    elif name.endswith(".json"):
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise Unsupported(f"{path}: a .json source that is not an array")
        yield from rows
    elif name.endswith(".csv"):
        yield from csv.DictReader(io.StringIO(text, newline=""))
    else:
        raise Unsupported(f"{path}: format not modelled by the reference")


def _lookup(row: Any, dotted: str) -> str | None:
    value = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    # As the tool renders them: null is empty, booleans and integers as written;
    # objects and arrays are bad input. (Floats keep their source text in the tool,
    # which json.loads loses, so the reference does not model them.)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise Unsupported("float fields are rendered with their source text")
    return value if isinstance(value, str) else None


def map_field(row: Any, spec: str) -> str | None:
    """A ``map`` value: a field name, or a template of ``{field}`` / ``{a.b}`` references."""
    if "{" not in spec:
        return _lookup(row, spec)
    out, rest = [], spec
    while "{" in rest:
        before, _, after = rest.partition("{")
        name, closed, rest = after.partition("}")
        if not closed:
            raise Unsupported(f"map template {spec!r} has an unclosed brace")
        value = _lookup(row, name)
        if value is None:
            return None
        out += [before, value]
    out.append(rest)
    return "".join(out)


def load_spec(path: Path) -> dict:
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise Unsupported(f"spec keys {sorted(unknown)}")
    dedup = spec.get("dedup", {})
    if set(dedup) - {"exact"} or not isinstance(dedup.get("exact", True), bool):
        raise Unsupported(f"dedup options {sorted(set(dedup) - {'exact'})}")
    if set(spec.get("filter", {})) - {"min_chars", "max_chars"}:
        raise Unsupported(f"filter options {sorted(spec['filter'])}")
    if spec.get("pack", {}).get("strategy", "none") not in ("none", "concat", "best-fit", "pad"):
        raise Unsupported(f"pack.strategy {spec['pack']['strategy']!r}")
    if spec.get("template") not in ("plain", "alpaca", "chatml", "llama3", "align-anything"):
        raise Unsupported(f"template {spec.get('template')!r}")
    if set(spec.get("split", {})) - {"validation", "seed"}:
        raise Unsupported(f"split options {sorted(spec['split'])}")
    if spec.get("split", {}).get("validation") and spec["pack"].get("strategy") == "concat":
        # Which records go to validation is not documented, and concat cuts documents
        # apart, so the per-split streams cannot be rebuilt from the output.
        raise Unsupported("a validation split under concat packing")
    for source in spec["sources"]:
        extra = set(source) - {"name", "path", "map"}
        if extra:
            raise Unsupported(f"source {source['name']!r} keys {sorted(extra)}")
        if set(source["map"]) - {"prompt", "response", "system", "text"}:
            raise Unsupported(f"source {source['name']!r} map keys {sorted(source['map'])}")
    return spec


MIX_SALT = 0x4D4958


def mix_copies(kept: list[Rec], spec: dict, tokens_of) -> list[int]:
    """How many times each kept record appears under ``mix`` (docs/PIPELINE.md, "Shape").

    Per source, its target is its share of the total (records: largest remainders, ties
    to the earlier source; tokens: rounded). Every record gets ``target // size`` copies;
    the remainder is a pass in draw order (seed ^ MIX_SALT, ties by position): the first
    ``target % size`` records, or by tokens the records while they fit the remainder,
    stopping at the first that does not.
    """
    mix = spec["mix"]
    by = mix.get("by", "records")
    names = [s["name"] for s in spec["sources"]]
    raw = [float(mix["proportions"][n]) for n in names]
    shares = [x / sum(raw) for x in raw] if abs(sum(raw) - 1) > 1e-12 else raw
    members = {n: [i for i, r in enumerate(kept) if r.source == n] for n in names}
    size = {n: (len(members[n]) if by == "records" else sum(tokens_of(kept[i]) for i in members[n])) for n in names}
    total = mix.get("total", sum(size.values()))
    if by == "records":
        targets = [int(s * total) for s in shares]
        frac = [s * total - int(s * total) for s in shares]
        order = sorted(range(len(names)), key=lambda k: (-frac[k], k))
        for k in order[: max(0, total - sum(targets))]:
            if shares[k] > 0:
                targets[k] += 1
    else:
        targets = [round(s * total) for s in shares]
    copies = [0] * len(kept)
    for k, name in enumerate(names):
        if targets[k] > 0 and size[name] == 0:
            raise ValueError(f"mix: source {name!r} has nothing left for its share")
        if size[name] == 0:
            continue
        base, rest = divmod(targets[k], size[name])
        for i in members[name]:
            copies[i] = base
        seed = mix.get("seed", 0) ^ MIX_SALT
        for i in sorted(members[name], key=lambda i: (draw(seed, kept[i]), i)):
            if rest <= 0:
                break
            cost = 1 if by == "records" else tokens_of(kept[i])
            if cost > rest:
                break
            rest -= cost
            copies[i] += 1
    return copies


def kept_records(spec_path: Path, tokens_of=None) -> tuple[list[Rec], Counter]:
    """The records a build keeps, in spec order (a record ``mix`` repeats appears that many
    times in a row); plus per-source counts (read, exact_dup, ...). ``tokens_of(rec)``
    gives a record's rendered length, for ``sample.tokens`` and ``mix`` by tokens."""
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    config = normalize_config(spec.get("normalize", True))
    limits = spec.get("filter", {})
    exact = spec.get("dedup", {}).get("exact", False)
    seen: set[tuple[str, ...]] = set()
    kept: list[Rec] = []
    counts: Counter = Counter()
    for source in spec["sources"]:
        name, mapping = source["name"], source["map"]
        paths = sorted(glob(str(spec_path.parent / source["path"])))
        if not paths:
            raise Unsupported(f"source {name!r}: no file matches {source['path']!r}")
        for path in paths:
            for row in read_rows(Path(path)):
                fields = {key: map_field(row, value) for key, value in mapping.items()}
                if any(value is None for value in fields.values()):
                    counts[name, "rejected"] += 1
                    continue
                counts[name, "read"] += 1
                fields = {key: normalize(value, config) for key, value in fields.items()}
                if "text" in fields:
                    rec = Rec(name, "text", text=fields["text"])
                else:
                    rec = Rec(
                        name, "instruction", fields.get("system", ""), fields["prompt"], fields["response"]
                    )
                total = sum(len(v) for v in fields.values())
                empty_response = "response" in fields and fields["response"] == ""
                if empty_response or not limits.get("min_chars", 1) <= total <= limits.get("max_chars", total):
                    counts[name, "filtered"] += 1
                    continue
                key = rec.key() if exact else None
                if key and key in seen:
                    counts[name, "exact_dup"] += 1
                    continue
                if key:
                    seen.add(key)
                counts[name, "kept"] += 1
                kept.append(rec)
    sample = spec.get("sample")
    if sample:
        # The global sample (docs/PIPELINE.md, "Shape"): the smallest draws for its seed,
        # ties by position; `records` of them or what fits the `tokens` budget in order.
        order = sorted(range(len(kept)), key=lambda i: (draw(sample.get("seed", 0), kept[i]), i))
        if "records" in sample:
            chosen = set(order[: sample["records"]])
        elif tokens_of is None:
            raise Unsupported("sample.tokens without a tokens_of (the caller renders)")
        else:
            chosen, used = set(), 0
            for i in order:
                if used + tokens_of(kept[i]) > sample["tokens"]:
                    break
                used += tokens_of(kept[i])
                chosen.add(i)
        for i, rec in enumerate(kept):
            if i not in chosen:
                counts[rec.source, "kept"] -= 1
                counts[rec.source, "subsampled"] += 1
        kept = [rec for i, rec in enumerate(kept) if i in chosen]
    if "mix" in spec:
        if spec["mix"].get("by", "records") == "tokens" and tokens_of is None:
            raise Unsupported("mix by tokens without a tokens_of (the caller renders)")
        copies = mix_copies(kept, spec, tokens_of)
        for rec, n in zip(kept, copies):
            if n == 0:
                counts[rec.source, "kept"] -= 1
                counts[rec.source, "subsampled"] += 1
        kept = [rec for rec, n in zip(kept, copies) for _ in range(n)]
    return kept, counts


# -- templates (docs/TEMPLATES.md) -------------------------------------------------------------


class Renderer:
    """Turns records into documents for one template and tokenizer.

    ``encoding`` is a tiktoken Encoding that knows the special tokens (for decoding);
    ``specials`` maps ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>`` to their ids.
    """

    def __init__(self, template: str, encoding: Any, specials: dict[str, int]) -> None:
        self.template = template
        self.encoding = encoding
        self.specials = specials

    def segments(self, rec: Rec) -> list[tuple[str | int, int]]:
        """(text or special id, loss) pairs; adjacent texts of one loss already joined."""
        eos = self.specials["<|endoftext|>"]
        if rec.kind == "text":
            return [(rec.text, 1), (eos, 1)]
        if self.template == "plain":
            head = f"{rec.system}\n" if rec.system else ""
            return [(f"{head}{rec.prompt}\n", 0), (rec.response, 1), (eos, 1)]
        if self.template == "alpaca":
            system = rec.system or ALPACA_DEFAULT_SYSTEM
            prompt = f"{system}\n\n### Instruction:\n{rec.prompt}\n\n### Response:\n"
            return [(prompt, 0), (rec.response, 1), (eos, 1)]
        if self.template == "align-anything":
            # PKU-Alignment's safe-rlhf: PROMPT_BEGIN, PROMPT_USER 'USER: {input} ', 'ASSISTANT:'.
            head = f"{rec.system} " if rec.system else ""
            return [(f"BEGINNING OF CONVERSATION: {head}USER: {rec.prompt} ASSISTANT:", 0), (rec.response, 1), (eos, 1)]
        if self.template == "llama3":
            bot, sh, eh, eot = (self.specials[k] for k in ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"))
            out: list[tuple[str | int, int]] = [(bot, 0)]
            if rec.system:
                out += [(sh, 0), ("system", 0), (eh, 0), (f"\n\n{rec.system}", 0), (eot, 0)]
            out += [(sh, 0), ("user", 0), (eh, 0), (f"\n\n{rec.prompt}", 0), (eot, 0)]
            out += [(sh, 0), ("assistant", 0), (eh, 0), ("\n\n", 0), (rec.response, 1), (eot, 1)]
            return [(p, l) for p, l in out if p != ""]
        start, end = self.specials["<|im_start|>"], self.specials["<|im_end|>"]
        out = []
        if rec.system:
            out += [(start, 0), (f"system\n{rec.system}", 0), (end, 0), ("\n", 0)]
        out += [(start, 0), (f"user\n{rec.prompt}", 0), (end, 0), ("\n", 0)]
        out += [(start, 0), ("assistant\n", 0), (rec.response, 1), (end, 1), ("\n", 0)]
        return out

    def render(self, rec: Rec) -> Doc:
        names = {v: k for k, v in self.specials.items()}
        tokens: list[int] = []
        mask: list[int] = []
        text, target = [], []
        for piece, loss in self.segments(rec):
            if isinstance(piece, int):
                ids, shown = [piece], names[piece]
            else:
                ids, shown = self.encoding.encode_ordinary(piece), piece
            tokens += ids
            mask += [loss] * len(ids)
            text.append(shown)
            if loss:
                target.append(shown)
        return Doc(rec, tuple(tokens), tuple(mask), "".join(text), "".join(target))


# -- packing (docs/TEMPLATES.md "Packing") -----------------------------------------------------

Piece = tuple[tuple[int, ...], tuple[int, ...]]  # (tokens, mask) of one packed document


def apply_overflow(docs: Sequence[Doc], seq_len: int, overflow: str) -> list[Piece]:
    """Documents as packed: split into seq_len pieces, truncated, or dropped when too long."""
    out: list[Piece] = []
    for doc in docs:
        if len(doc.tokens) <= seq_len:
            out.append((doc.tokens, doc.mask))
        elif overflow == "split":
            for a in range(0, len(doc.tokens), seq_len):
                out.append((doc.tokens[a : a + seq_len], doc.mask[a : a + seq_len]))
        elif overflow == "truncate":
            if any(doc.mask[:seq_len]):  # else it would train on nothing: dropped
                out.append((doc.tokens[:seq_len], doc.mask[:seq_len]))
        elif overflow != "drop":
            raise Unsupported(f"pack.overflow {overflow!r}")
    return out


def best_fit_pack(lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    """Best-fit decreasing: for each sequence, in opening order, the indexes of its documents.

    Largest first (equal lengths in input order); each goes to the sequence with the least
    room that still fits it, ties to the earliest-opened; none fits -> a new sequence.
    """
    rooms: list[int] = []
    bins: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        best = -1
        for k, room in enumerate(rooms):
            # Strictly less room wins, so on a tie the earlier-opened sequence stays.
            if lengths[i] <= room and (best < 0 or room < rooms[best]):
                best = k
        if best < 0:
            rooms.append(seq_len)
            bins.append([])
            best = len(rooms) - 1
        rooms[best] -= lengths[i]
        bins[best].append(i)
    return bins


def best_fit_bins(lengths: Sequence[int], seq_len: int) -> list[tuple[int, ...]]:
    """Each best-fit sequence's document lengths, sorted, in opening order.

    Only lengths decide where a document goes, so this does not depend on how documents
    of equal length are ordered among themselves: the comparison a test can rely on.
    """
    return [tuple(sorted(lengths[i] for i in b)) for b in best_fit_pack(lengths, seq_len)]


def concat_sequences(pieces: Sequence[Piece], seq_len: int) -> list[tuple[tuple, tuple, tuple]]:
    """The ``concat`` stream cut every seq_len tokens: (tokens, mask, doc starts) per sequence."""
    tokens: list[int] = []
    mask: list[int] = []
    starts: set[int] = set()
    for piece_tokens, piece_mask in pieces:
        starts.add(len(tokens))
        tokens += piece_tokens
        mask += piece_mask
    out = []
    for a in range(0, len(tokens), seq_len):
        b = min(a + seq_len, len(tokens))
        seq_starts = sorted({0} | {s - a for s in starts if a <= s < b})
        out.append((tuple(tokens[a:b]), tuple(mask[a:b]), tuple(seq_starts)))
    return out


def count_overflow(docs, counts: Counter, seq_len: int, strategy: str, overflow: str):
    """Packing overflow moves each record longer than ``seq_len`` from ``kept`` to its own
    bucket (``overflow_dropped`` or ``truncated``; nothing under ``concat`` or ``split``).
    Updates ``counts``; returns the function giving a document's tokens in the shards."""
    cut = strategy != "concat" and overflow in ("drop", "truncate")
    for key in ("overflow_dropped", "truncated"):
        for doc in docs:
            counts[doc.rec.source, key] += 0
    def dropped(doc) -> bool:  # truncate drops what would train on nothing (TEMPLATES.md)
        return overflow == "drop" or not any(doc.mask[:seq_len])

    seen = set()  # a record ``mix`` repeats is one record in the counts
    for doc in docs:
        if cut and len(doc.tokens) > seq_len and id(doc.rec) not in seen:
            seen.add(id(doc.rec))
            counts[doc.rec.source, "kept"] -= 1
            counts[doc.rec.source, "overflow_dropped" if dropped(doc) else "truncated"] += 1

    def written(doc) -> int:
        if not cut or len(doc.tokens) <= seq_len:
            return len(doc.tokens)
        return 0 if dropped(doc) else seq_len

    return written


def pad_sequence(piece: Piece, seq_len: int, pad_id: int) -> tuple[list, list, list]:
    """Strategy ``pad`` (FORMAT.md 1.2): one item a sequence; a shorter one is filled up
    with ``pad_id``, loss 0, and the padding is one more document where it begins."""
    tokens, mask = list(piece[0]), list(piece[1])
    starts = [0]
    if len(tokens) < seq_len:
        starts.append(len(tokens))
        mask += [0] * (seq_len - len(tokens))
        tokens += [pad_id] * (seq_len - len(tokens))
    return tokens, mask, starts
