"""A slow, obviously-correct Python twin of a build: spec -> records -> documents -> sequences.

Written from docs/TEMPLATES.md, docs/FORMAT.md, docs/PIPELINE.md and /work/shared/DESIGN.md
("The build spec"), and, where those are silent, from the Swift sources named below, to
check the Swift tool's output, never to be fast. It covers the part of the spec the tests
use:

- sources: JSON arrays, JSONL, CSV (optionally .gz/.zst) and Parquet (via pyarrow), mapped
  to instruction records (``prompt``/``response``/``system``, field names or ``{field}``
  templates with ``[[ ... ]]`` optional sections), text records (``text``), chat lists
  (``messages`` + ``role``/``content``/``roles``/``system``: Ingest/FieldMapping.swift
  ``conversation()``) or row-per-turn conversations (``group_by``/``order_by``/``content``
  and optionally ``role``/``roles``/``system``: Ingest/Grouping.swift); ``on_error`` and
  ``invalid_utf8`` (lone surrogate escapes in JSON) per source or at the top level;
- normalization of every text field (system, each turn, text), the filters (
  ``empty_response``, ``empty_assistant_turn``, ``min_chars``/``max_chars``, ``min_words``,
  ``non_text_ratio``: Normalize/Filters.swift), exact dedup on ``all``/``prompt``/
  ``response`` (Dedup/DedupText.swift, ExactDedup.swift), ``sample`` and ``mix``;
- near dedup (``dedup.near``: MinHash signatures, LSH bands, confirmation, union-find
  clusters; docs/DEDUP.md, Dedup/MinHash.swift, NearDedup.swift, NearDedupStep.swift) and
  ``decontaminate`` (eval files' ``field`` strings, ``ngram`` shingles of each record's
  ``all`` text; Dedup/Decontamination.swift, DecontaminateStep.swift), in the build's
  order: filter, exact dedup, near dedup, decontamination. Shingling and the LSH
  parameter search are near_dup_oracle.py's;
- the templates plain / alpaca / chatml / llama3 / align-anything over any number of
  turns, ``loss: last_turn``, and custom templates (Packing/Template.swift,
  CustomTemplate.swift, ``parseTemplate`` in Pipeline/Spec.swift);
- the packing strategies none / concat / best-fit / pad with every overflow mode.

A ``split`` sends a record to validation by its draw (docs/PIPELINE.md, "Shape": the
source's name and the record's own content, seeded). Anything else raises
:class:`Unsupported`, and the calling test skips with that message rather than checking
against a guess. A bad row in a source that does not skip bad rows raises
:class:`BadInput` (the build fails on it).

Interpretations (from the Swift sources where the documents are silent):
- ``map`` values containing ``{``, ``}``, ``[[`` or ``]]`` are templates, others field
  names (dotted paths); normalization runs on the mapped value, after template
  substitution. Numbers render as written in the file, booleans as true/false, null as
  nothing; a missing field, a list or an object is a bad row.
- ``system`` mapped to an empty string means absent (TEMPLATES.md).
- Chat lists: leading system messages are joined by ``\\n`` into the system prompt
  (before normalization, so trimming applies to the joined text); with none, the map's
  ``system`` renders from the row. A system message after a user or assistant turn, an
  unknown role, a non-string role or content, a message that is not an object, a missing
  or non-list field and a conversation without an assistant turn are bad rows. Role names
  are looked up as written, then lower-cased; the spec's ``roles`` add to the defaults.
- Row-per-turn: rows are grouped per file by ``group_by`` in order of first appearance,
  each group sorted by ``order_by`` (numerically when every value is a number, else by
  bytes; ties keep file order). Turns alternate user, assistant, ... unless ``role``
  names the speaker; leading system rows are the system prompt, joined by "\n"; else
  ``system`` is rendered from the first row after sorting. A bad row is rejected alone; a group
  without an assistant turn rejects all its rows. ``read`` counts rows.
- ``filter.min_chars``/``max_chars`` bound the code points summed over system, every turn
  and text. ``min_chars`` defaults to 1.
- ``read`` counts rows that became records; ``rejected`` the bad rows (read + rejected =
  rows of the input, DESIGN.md).
- Sources are read in spec order, each glob's matches in sorted order.
- Eval texts for ``decontaminate`` are taken as the file has them (the tool does not
  normalize them); the records they are compared with are normalized.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import struct
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

import near_dup_oracle
import numpy as np
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
    "on_error",
    "invalid_utf8",
    "decontaminate",
}
BUILTIN_TEMPLATES = ("plain", "alpaca", "chatml", "llama3", "align-anything")
LLAMA3_TOKENS = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
USER, ASSISTANT = 0, 1


class Unsupported(Exception):
    """The spec uses something this reference does not model."""


class BadInput(Exception):
    """A bad row in a source whose ``on_error`` is ``fail``: the build stops on it."""


class MapError(Exception):
    """A row that cannot become a record (a reject, or BadInput under on_error: fail)."""


class Num(str):
    """A JSON number, kept as written in the file (the tool renders it so)."""


@dataclass(frozen=True)
class Rec:
    """A normalized record (TokenmillCore/Record.swift). ``kind`` is ``"conversation"``
    (``system`` and ``turns``: (role, content) pairs, role 0 user / 1 assistant; an
    instruction pair is one user and one assistant turn) or ``"text"`` (``text``)."""

    source: str
    kind: str
    system: str = ""
    turns: tuple[tuple[int, str], ...] = ()
    text: str = ""

    @staticmethod
    def instruction(source: str, system: str, prompt: str, response: str) -> "Rec":
        return Rec(source, "conversation", system, ((USER, prompt), (ASSISTANT, response)))

    @property
    def prompt(self) -> str:
        """The first user turn (instruction records have one)."""
        return next((c for r, c in self.turns if r == USER), "")

    @property
    def response(self) -> str:
        """The last assistant turn."""
        return next((c for r, c in reversed(self.turns) if r == ASSISTANT), "")

    def dedup_text(self, on: str = "all") -> str:
        """The compared text of ``dedup.*.on`` (Dedup/DedupText.swift): ``prompt`` the user
        turns or the text, ``response`` the assistant turns, ``all`` the system prompt (when
        present), every turn (empty ones too) and the text (when present); joined by \\n."""
        if on == "prompt":
            parts = [self.text] if self.kind == "text" else [c for r, c in self.turns if r == USER]
        elif on == "response":
            parts = [c for r, c in self.turns if r == ASSISTANT]
        elif on == "all":
            parts = ([self.system] if self.system else []) + [c for _, c in self.turns] + ([self.text] if self.text else [])
        else:
            raise Unsupported(f"dedup on {on!r}")
        return "\n".join(parts)

    def key(self, on: str = "all") -> str:
        """The exact-dedup key text (docs/DEDUP.md): the ``on`` text, then NFKD, nonspacing
        marks and punctuation dropped, simple case folding, whitespace runs collapsed to one
        space, trimmed. Empty: the record is nobody's duplicate."""
        return exact_key_text(self.dedup_text(on))

    def scalar_count(self) -> int:
        return len(self.system) + len(self.text) + sum(len(c) for _, c in self.turns)


def content_hash(rec: Rec) -> int:
    """xxh3-64 of the record's kind and fields (docs/PIPELINE.md, "Shape";
    Record.contentHash): kind byte (0 conversation, 1 text), then system (tag 0xFF), every
    turn (tag = its role, 0 user / 1 assistant), text (0xFE), each as tag, u64 LE length,
    UTF-8 bytes; empty fields included."""

    def field(tag: int, text: str) -> bytes:
        b = text.encode("utf-8")
        return bytes([tag]) + struct.pack("<Q", len(b)) + b

    data = bytes([0 if rec.kind == "conversation" else 1]) + field(0xFF, rec.system)
    data += b"".join(field(role, content) for role, content in rec.turns)
    data += field(0xFE, rec.text)
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


class _KeyTable(dict):
    """``str.translate`` table of the exact key: space -> ' ', dropped -> None, else folded."""

    def __missing__(self, code: int):
        c = chr(code)
        if c in KEY_SPACE:
            out = " "
        else:
            cat = unicodedata.category(c)
            out = None if cat == "Mn" or cat.startswith("P") else simple_fold(c)
        self[code] = out
        return out


_KEY_TABLE = _KeyTable()


def exact_key_text(text: str) -> str:
    # Dropped scalars join their neighbours ("a-b" -> "ab"); a run of spaces between two
    # kept scalars is one space, none at either end.
    kept = unicodedata.normalize("NFKD", text).translate(_KEY_TABLE)
    return " ".join(part for part in kept.split(" ") if part)


@dataclass(frozen=True)
class Doc:
    """A rendered document: tokens, per-token loss, the rendered text and its trained-on part."""

    rec: Rec
    tokens: tuple[int, ...]
    mask: tuple[int, ...]
    text: str
    target: str


# -- normalization and filters ------------------------------------------------------------------


def normalize_config(value) -> dict:
    """The spec's ``normalize`` as Tokenmill reads it: absent or ``true`` is every step with
    NFC, ``false`` none; in an object each step defaults to on, ``unicode`` to NFC."""
    if value is True:
        value = {}
    if value is False:
        return {}
    form = value.get("unicode", "NFC")
    if form not in ("NFC", "none"):
        raise Unsupported(f"normalize.unicode {form!r} (the tool refuses it)")
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


def normalize_record(rec: Rec, config: dict) -> Rec:
    """Every text field normalized (Record.transformTexts)."""
    return Rec(rec.source, rec.kind, normalize(rec.system, config),
               tuple((r, normalize(c, config)) for r, c in rec.turns), normalize(rec.text, config))


def filter_config(spec: dict) -> dict:
    value = spec.get("filter", {})
    allowed = {"min_chars", "max_chars", "drop_empty_response", "allow_empty_turns", "min_words", "max_non_text_ratio"}
    if set(value) - allowed:
        raise Unsupported(f"filter options {sorted(set(value) - allowed)}")
    return {"min_chars": value.get("min_chars", 1), "max_chars": value.get("max_chars"),
            "drop_empty_response": value.get("drop_empty_response", True),
            "allow_empty_turns": value.get("allow_empty_turns", False),
            "min_words": value.get("min_words", 0), "max_non_text_ratio": value.get("max_non_text_ratio", 1)}


def filter_reason(rec: Rec, config: dict) -> str | None:
    """Why a normalized record is dropped (Normalize/Filters.swift, in its order), or None."""
    if rec.kind == "conversation":
        assistant = [c for r, c in rec.turns if r == ASSISTANT]
        if config["drop_empty_response"] and (not assistant or assistant[-1] == ""):
            return "empty_response"
        if not config["allow_empty_turns"] and "" in assistant:
            return "empty_assistant_turn"
    n = rec.scalar_count()
    if n < config["min_chars"]:
        return "min_chars"
    if config["max_chars"] is not None and n > config["max_chars"]:
        return "max_chars"
    if config["min_words"] > 0 or config["max_non_text_ratio"] < 1:
        fields = [rec.system, rec.text] + [c for _, c in rec.turns]
        words = sum(len([w for w in re.split(f"[{re.escape(WHITE_SPACE)}]+", f) if w]) for f in fields)
        chars = [c for f in fields for c in f if c not in KEY_SPACE]
        non_text = sum(1 for c in chars if unicodedata.category(c)[0] in "SC")
        if words < config["min_words"]:
            return "min_words"
        if chars and non_text / len(chars) > config["max_non_text_ratio"]:
            return "non_text_ratio"
    return None


# -- sources ------------------------------------------------------------------------------------


def _decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


def source_format(path: Path, given: str | None) -> str:
    """The source's ``format``, else inferred from the extension (SourceConfig.inferFormat)."""
    if given is not None:
        fmt = given
    else:
        name = path.name.removesuffix(".gz").removesuffix(".zst")
        fmt = next((f for ends, f in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".csv", "csv"),
                                      (".parquet", "parquet"), (".pq", "parquet"), (".txt", "text"), (".md", "text"))
                    if name.endswith(ends)), None)
    if fmt not in ("jsonl", "json", "csv", "parquet"):
        raise Unsupported(f"{path}: format {fmt!r} not modelled by the reference")
    return fmt


def _first_wins(pairs):
    # JSONValue's subscript returns the first member of a name; json.loads keeps the last.
    out = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def _json(text: str):
    return json.loads(text, object_pairs_hook=_first_wins, parse_int=Num, parse_float=Num,
                      parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _repair(value):
    """(value with lone surrogates replaced by U+FFFD, how many were)."""
    if isinstance(value, str) and not isinstance(value, Num):
        fixed, n = LONE_SURROGATE.subn("\ufffd", value)
        return fixed, n
    if isinstance(value, list):
        items = [_repair(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    if isinstance(value, dict):
        out, total = {}, 0
        for k, v in value.items():
            k2, n1 = _repair(k)
            v2, n2 = _repair(v)
            out.setdefault(k2, v2)
            total += n1 + n2
        return out, total
    return value, 0


def repair_row(row, keep: set[str]):
    """A JSON row as the tool parses it (JSONParser.parseRow(keeping:)): lone surrogate
    escapes become U+FFFD; repairs count in every top-level key and in the kept members."""
    if not isinstance(row, dict):
        return _repair(row)
    out, total = {}, 0
    for k, v in row.items():
        k2, n = _repair(k)
        total += n
        if k2 in keep:
            v2, n = _repair(v)
            total += n
            out.setdefault(k2, v2)
    return out, total


def read_rows(path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line, row) for every row of one source file; a row that is not valid JSON, or a CSV
    row with the wrong number of fields, comes back as None. An empty file raises EmptyFile."""
    raw = _decompressed(path)
    if fmt != "parquet" and raw.strip(b" \n\r\t") == b"":
        raise EmptyFile(str(path))
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if len(raw) <= 4096 and raw.strip(b" \n\r\t") == b"":
            raise EmptyFile(str(path))
        for k, row in enumerate(pq.read_table(io.BytesIO(raw)).to_pylist()):
            yield k + 1, row
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unsupported(f"{path}: invalid UTF-8 bytes (the tool repairs them; not modelled)") from error
    if fmt == "jsonl":
        for k, line in enumerate(text.split("\n")):
            if line.strip(" \t\r\n"):
                try:
                    yield k + 1, _json(line)
                except ValueError:
                    yield k + 1, None
    elif fmt == "json":
        try:
            rows = _json(text)
        except ValueError as error:
            raise Unsupported(f"{path}: a JSON array with a syntax error (the tool stops the file there)") from error
        if not isinstance(rows, list):
            raise Unsupported(f"{path}: a .json source that is not an array")
        # The tool numbers an element by the line it starts on (dedup-clusters.jsonl and
        # decontaminated.jsonl name records so).
        yield from zip(array_element_lines(text), rows)
    else:
        if re.search("\r(?!\n)", text):
            raise Unsupported(f"{path}: a lone CR in CSV (Python's csv module ends a row there, the tool does not)")
        text = text.removeprefix("\ufeff")
        try:
            reader = csv.reader(io.StringIO(text, newline=""), strict=True)
            header = next(reader)
            number = 0
            for fields in reader:
                if not fields:
                    continue  # a blank line is not a row
                number += 1
                yield number, dict(zip(header, fields)) if len(fields) == len(header) else None
        except csv.Error as error:
            raise Unsupported(f"{path}: malformed CSV ({error})") from error


class EmptyFile(Exception):
    pass


def array_element_lines(text: str) -> list[int]:
    """The 1-based line each element of a (valid) top-level JSON array starts on."""
    decoder = json.JSONDecoder()
    space = " \t\n\r"
    i = text.index("[") + 1
    line, counted = 1, 0
    lines = []
    while True:
        while text[i] in space:
            i += 1
        if text[i] == "]":
            return lines
        line += text.count("\n", counted, i)
        counted = i
        lines.append(line)
        _, i = decoder.raw_decode(text, i)
        while text[i] in space:
            i += 1
        if text[i] == ",":
            i += 1


# -- mapping (Ingest/FieldMapping.swift) ---------------------------------------------------------


def parse_value(s: str) -> list:
    """A ``map`` value as FieldMapping.Value.parse reads it: a list of parts, each
    ("lit", text), ("field", path) or ("opt", parts)."""
    if not any(x in s for x in ("{", "}", "[[", "]]")):
        return [("field", s.split("."))]

    def template(t: str) -> list:
        parts, lit, i = [], [], 0
        while i < len(t):
            c = t[i]
            if t.startswith("{{", i) or t.startswith("}}", i):
                lit.append(c)
                i += 2
                continue
            if c == "}":
                raise Unsupported(f"map template {s!r}: unmatched '}}' (the tool refuses it)")
            if c == "{":
                close = t.find("}", i + 1)
                if close < 0:
                    raise Unsupported(f"map template {s!r}: unclosed '{{'")
                name = t[i + 1 : close]
                if not name or "{" in name:
                    raise Unsupported(f"map template {s!r}: empty or nested field name")
                if lit:
                    parts.append(("lit", "".join(lit)))
                    lit = []
                parts.append(("field", name.split(".")))
                i = close + 1
                continue
            lit.append(c)
            i += 1
        if lit:
            parts.append(("lit", "".join(lit)))
        return parts

    def sections(t: str) -> list:
        open_ = t.find("[[")
        if open_ < 0:
            if "]]" in t:
                raise Unsupported(f"map template {s!r}: ']]' without '[['")
            return template(t)
        close = t.find("]]", open_ + 2)
        if close < 0:
            raise Unsupported(f"map template {s!r}: unclosed '[['")
        inner = t[open_ + 2 : close]
        if "[[" in inner:
            raise Unsupported(f"map template {s!r}: nested '[['")
        inner_parts = template(inner)
        if not any(p[0] == "field" for p in inner_parts):
            raise Unsupported(f"map template {s!r}: an optional section without a field")
        return template(t[:open_]) + [("opt", inner_parts)] + sections(t[close + 2 :])

    return sections(s)


def _field_text(row: Any, path: list[str]) -> str:
    value = row
    for part in path:
        if not isinstance(value, dict) or part not in value:
            raise MapError(f"missing field '{'.'.join(path)}'")
        value = value[part]
    # As the tool renders them: strings as they are, numbers as written, booleans, null
    # empty; objects and arrays are bad input.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # Num included: its text as written
        return str(value)
    if isinstance(value, int):  # Parquet integers
        return str(value)
    if isinstance(value, float):
        raise Unsupported("Parquet float fields (the tool's rendering of them is not modelled)")
    if isinstance(value, (list, dict)):
        raise MapError(f"field '{'.'.join(path)}' is a list or an object, expected a string")
    raise Unsupported(f"a field of Python type {type(value).__name__}")


def render_value(parts: list, row: Any) -> str:
    def run(parts) -> tuple[str, bool]:
        out, filled = [], True
        for kind, x in parts:
            if kind == "lit":
                out.append(x)
            elif kind == "opt":
                section, ok = run(x)
                if ok:
                    out.append(section)
            else:
                text = _field_text(row, x)
                filled = filled and text != ""
                out.append(text)
        return "".join(out), filled

    return run(parts)[0]


def map_field(row: Any, spec: str) -> str | None:
    """A ``map`` value rendered from a row; None when the row is bad for it."""
    try:
        return render_value(parse_value(spec), row)
    except MapError:
        return None


DEFAULT_ROLES = {"system": "system", "user": "user", "human": "user", "prompter": "user", "assistant": "assistant",
                 "gpt": "assistant", "bot": "assistant", "model": "assistant", "chatgpt": "assistant"}


def _role_key(name: str) -> str:
    # Swift compares String keys by canonical equivalence.
    return unicodedata.normalize("NFC", name)


@dataclass
class SourceMap:
    """A source's ``map``, classified as Pipeline/Spec.swift parseMap does."""

    kind: str  # "plain" | "chat" | "group"
    values: dict = field(default_factory=dict)  # key -> parsed value (prompt, response, system, text, ...)
    messages: list = field(default_factory=list)
    role_key: str = "role"
    content_key: str = "content"
    roles: dict = field(default_factory=dict)

    @staticmethod
    def parse(m: dict, where: str) -> "SourceMap":
        allowed = {"prompt", "response", "system", "text", "messages", "role", "content", "roles", "group_by", "order_by"}
        if set(m) - allowed:
            raise Unsupported(f"{where}: map keys {sorted(set(m) - allowed)} (the tool refuses them)")
        for k, v in m.items():
            if k != "roles" and not isinstance(v, str):
                raise Unsupported(f"{where}: map.{k} is not a string")
        roles = {_role_key(k): v for k, v in DEFAULT_ROLES.items()}
        for k, v in m.get("roles", {}).items():
            if v not in ("system", "user", "assistant"):
                raise Unsupported(f"{where}: map.roles.{k} is {v!r}")
            roles[_role_key(k)] = v
            roles[_role_key(k.lower())] = v
        values = {k: parse_value(m[k]) for k in ("prompt", "response", "system", "text", "group_by", "order_by") if k in m}
        if "group_by" in m:
            if set(m) & {"prompt", "response", "text", "messages"} or "content" not in m:
                raise Unsupported(f"{where}: an invalid row-per-turn map (the tool refuses it)")
            if "roles" in m and "role" not in m:
                raise Unsupported(f"{where}: map.roles without map.role (the tool refuses it)")
            values["content"] = parse_value(m["content"])
            if "role" in m:
                values["role"] = parse_value(m["role"])
            return SourceMap("group", values, roles=roles)
        if "order_by" in m:
            raise Unsupported(f"{where}: order_by without group_by (the tool refuses it)")
        if "messages" in m:
            if set(m) & {"prompt", "response", "text"}:
                raise Unsupported(f"{where}: messages with prompt/response/text (the tool refuses it)")
            return SourceMap("chat", values, m["messages"].split("."), m.get("role", "role"), m.get("content", "content"),
                             roles)
        if set(m) & {"role", "content", "roles"}:
            raise Unsupported(f"{where}: role/content/roles without messages or group_by (the tool refuses it)")
        if "text" in m:
            if set(m) & {"prompt", "response", "system"}:
                raise Unsupported(f"{where}: text with prompt/response/system (the tool refuses it)")
        elif not {"prompt", "response"} <= set(m):
            raise Unsupported(f"{where}: neither prompt + response, messages nor text (the tool refuses it)")
        return SourceMap("plain", values)

    def top_level_keys(self) -> set[str]:
        keys = set()

        def add(parts):
            for kind, x in parts:
                if kind == "field":
                    keys.add(x[0])
                elif kind == "opt":
                    add(x)

        for parts in self.values.values():
            add(parts)
        if self.messages:
            keys.add(self.messages[0])
        return keys

    def role(self, name: str) -> str:
        role = self.roles.get(_role_key(name)) or self.roles.get(_role_key(name.lower()))
        if role is None:
            raise MapError(f"unknown role '{name}' (map it in \"roles\")")
        return role

    def record(self, row: Any, source: str) -> Rec:
        """The record a row maps to (FieldMapping.record); MapError for a bad row."""
        if not isinstance(row, dict):
            raise MapError("row is not an object")
        if self.kind == "chat":
            return self.conversation(row, source)
        v = self.values
        if "text" in v:
            return Rec(source, "text", text=render_value(v["text"], row))
        system = render_value(v["system"], row) if "system" in v else ""
        return Rec.instruction(source, system, render_value(v["prompt"], row), render_value(v["response"], row))

    def conversation(self, row: dict, source: str) -> Rec:
        """FieldMapping.conversation: leading system messages are the system prompt (joined
        by \\n; else the map's ``system``), then user and assistant turns in order."""
        cur: Any = row
        for k in self.messages:
            cur = cur.get(k) if isinstance(cur, dict) else None
        if not isinstance(cur, list):
            raise MapError(f"field '{'.'.join(self.messages)}' is missing or not a list of messages")
        system_parts: list[str] = []
        turns: list[tuple[int, str]] = []
        for m in cur:
            if not isinstance(m, dict):
                raise MapError("a message is not an object")
            role_name = m.get(self.role_key)
            if not _is_string(role_name):
                raise MapError(f"a message's '{self.role_key}' is missing or not a string")
            role = self.role(role_name)
            content = m.get(self.content_key)
            if not _is_string(content):
                raise MapError(f"a message's '{self.content_key}' is missing or not a string")
            if role == "system":
                if turns:
                    raise MapError("a system message after the conversation started")
                system_parts.append(content)
            else:
                turns.append((USER if role == "user" else ASSISTANT, content))
        if not any(r == ASSISTANT for r, _ in turns):
            raise MapError("conversation has no assistant turn")
        if system_parts:
            system = "\n".join(system_parts)
        else:
            system = render_value(self.values["system"], row) if "system" in self.values else ""
        return Rec(source, "conversation", system, tuple(turns))

    def turn_row(self, row: Any, line: int) -> dict:
        """Grouping.swift TurnGroup.turnRow; MapError for a bad row."""
        if not isinstance(row, dict):
            raise MapError("row is not an object")
        v = self.values
        role = self.role(render_value(v["role"], row)) if "role" in v else None
        return {"key": render_value(v["group_by"], row),
                "order": render_value(v["order_by"], row) if "order_by" in v else "",
                "role": role, "content": render_value(v["content"], row),
                "system": render_value(v["system"], row) if "system" in v else "", "line": line}


def _is_string(value) -> bool:
    return isinstance(value, str) and not isinstance(value, Num)


SWIFT_DOUBLE = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
)


def _swift_double(s: str) -> float | None:
    """Swift's ``Double(String)``: the whole string a decimal or hexadecimal float, inf or
    nan, no surrounding space; None otherwise."""
    if re.fullmatch(r"[+-]?[nN][aA][nN]", s):
        raise Unsupported(f"order_by value {s!r} (NaN ordering)")
    if not SWIFT_DOUBLE.fullmatch(s):  # " 2" too: Swift reads no number there (checked with the tool)
        return None
    return float.fromhex(s) if "x" in s.lower() else float(s)


def group_conversations(rows: list[dict]) -> list[list[dict]]:
    """Grouping.conversations: groups in order of first row, each sorted by its order."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["key"], []).append(r)
    out = []
    for g in groups.values():
        numbers = [_swift_double(r["order"]) for r in g]
        if all(x is not None for x in numbers):
            order = sorted(range(len(g)), key=lambda k: (numbers[k], k))
        else:
            order = sorted(range(len(g)), key=lambda k: (g[k]["order"].encode("utf-8", "surrogatepass"), k))
        out.append([g[k] for k in order])
    return out


def group_record(rows: list[dict], source: str) -> Rec:
    """TurnGroup.record: turns alternate user, assistant, ... unless a role says who speaks;
    system rows (before any turn) are the system prompt, joined by "\n"."""
    turns: list[tuple[int, str]] = []
    parts: list[str] = []
    for k, r in enumerate(rows):
        role = r["role"] or ("user" if k % 2 == 0 else "assistant")
        if role == "system":
            if turns:
                raise MapError("a system row after the conversation started")
            parts.append(r["content"])
        else:
            turns.append((USER if role == "user" else ASSISTANT, r["content"]))
    if not any(r == ASSISTANT for r, _ in turns):
        raise MapError("conversation has no assistant turn")
    system = "\n".join(parts) if parts else rows[0]["system"]
    return Rec(source, "conversation", system, tuple(turns))


# -- the spec --------------------------------------------------------------------------------------


def load_spec(path: Path) -> dict:
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise Unsupported(f"spec keys {sorted(unknown)}")
    dedup_field(spec)
    near_config(spec)
    decontaminate_config(spec, path)
    filter_config(spec)
    if spec.get("pack", {}).get("strategy", "best-fit") not in ("none", "concat", "best-fit", "pad"):
        raise Unsupported(f"pack.strategy {spec['pack']['strategy']!r}")
    if not isinstance(spec.get("tokenizer", "cl100k_base"), str):
        raise Unsupported("a tokenizer object (path + eos)")
    parse_template(spec.get("template", "chatml"))
    if set(spec.get("split", {})) - {"validation", "seed"}:
        raise Unsupported(f"split options {sorted(spec['split'])}")
    if spec.get("split", {}).get("validation") and spec.get("pack", {}).get("strategy", "best-fit") == "concat":
        # concat cuts documents apart, so the per-split streams cannot be rebuilt from the output.
        raise Unsupported("a validation split under concat packing")
    for k, source in enumerate(spec["sources"]):
        name = source.get("name", f"source{k}")
        extra = set(source) - {"name", "path", "map", "format", "on_error", "invalid_utf8", "comment"}
        if extra:
            raise Unsupported(f"source {name!r} keys {sorted(extra)}")
        SourceMap.parse(source["map"], f"source {name!r}")
    return spec


def dedup_field(spec: dict) -> str | None:
    """The ``on`` of exact dedup (Spec.swift: on by default, ``all``), or None when off."""
    dedup = spec.get("dedup", {})
    if isinstance(dedup, bool):
        return "all" if dedup else None
    if set(dedup) - {"exact", "near"}:
        raise Unsupported(f"dedup options {sorted(set(dedup) - {'exact', 'near'})}")
    exact = dedup.get("exact", True)
    if isinstance(exact, bool):
        return "all" if exact else None
    if set(exact) - {"on"} or exact.get("on", "all") not in ("prompt", "response", "all"):
        raise Unsupported(f"dedup.exact {exact!r}")
    return exact.get("on", "all")


def _policy(source: dict, spec: dict) -> tuple[bool, str]:
    """(skip bad rows, invalid_utf8 policy) of a source."""
    skip = source.get("on_error", spec.get("on_error", "fail"))
    utf8 = source.get("invalid_utf8", spec.get("invalid_utf8", "repair"))
    if skip not in ("fail", "skip") or utf8 not in ("repair", "reject"):
        raise Unsupported(f"on_error {skip!r} / invalid_utf8 {utf8!r}")
    return skip == "skip", utf8


def source_records(spec_path: Path, spec: dict, k: int, counts: Counter) -> Iterator[tuple[int, Rec]]:
    """(line, record) for the records of source ``k`` in file order, before normalization;
    counts its read, rejected, records and repaired_utf8. Raises BadInput where the build
    must fail. ``line`` is the record's line in its file as dedup-clusters.jsonl gives it
    (JSONL line, the line a JSON array element starts on, CSV or Parquet row number, a
    grouped conversation's first row's)."""
    source = spec["sources"][k]
    name = source.get("name", f"source{k}")
    mapping = SourceMap.parse(source["map"], f"source {name!r}")
    skip, utf8 = _policy(source, spec)
    keep = mapping.top_level_keys()
    paths = sorted(glob(str(spec_path.parent / source["path"])))
    if not paths:
        raise Unsupported(f"source {name!r}: no file matches {source['path']!r}")

    def bad(path, line, why):
        if not skip:
            raise BadInput(f"{path}:{line}: {why}")
        counts[name, "rejected"] += 1

    for path in paths:
        fmt = source_format(Path(path), source.get("format"))
        turn_rows = []
        try:
            for line, row in read_rows(Path(path), fmt):
                if row is None:
                    bad(path, line, "invalid JSON or CSV row")
                    continue
                if fmt in ("json", "jsonl"):
                    row, repairs = repair_row(row, keep)
                    if repairs and utf8 == "reject":
                        bad(path, line, "invalid UTF-8 or a lone surrogate escape")
                        continue
                    if repairs:
                        counts[name, "repaired_utf8"] += 1
                try:
                    if mapping.kind == "group":
                        turn_rows.append(mapping.turn_row(row, line))
                        continue
                    rec = mapping.record(row, name)
                except MapError as error:
                    bad(path, line, str(error))
                    continue
                counts[name, "read"] += 1
                counts[name, "records"] += 1
                yield line, rec
        except EmptyFile:
            bad(path, 0, "the file is empty")
            continue
        for group in group_conversations(turn_rows):
            try:
                rec = group_record(group, name)
            except MapError as error:
                for r in group:
                    bad(path, r["line"], str(error))
                continue
            counts[name, "read"] += len(group)
            counts[name, "records"] += 1
            yield group[0]["line"], rec


# -- near dedup (docs/DEDUP.md "Near dedup"; Dedup/MinHash.swift, NearDedup.swift) ---------------
#
# Shingles and their xxh3-64 hashes, and the LSH (bands, rows) objective, come from
# near_dup_oracle.py (written from the same contract and tested against datasketch); the
# rest -- the MinHash family, band keys, buckets, confirmation and clusters -- is below.

NEAR_DEFAULTS = {"threshold": 0.8, "ngram": 5, "permutations": 128, "on": "prompt", "seed": 1}
# LSH weights (docs/DEDUP.md, decision): false negatives 0.9, false positives 0.1.
LSH_FP_WEIGHT, LSH_FN_WEIGHT = 0.1, 0.9
MINHASH_SALT = 0x4D696E4861736821  # "MinHash!", XORed into the seed (MinHash.swift)
MASK32, MASK64 = (1 << 32) - 1, (1 << 64) - 1


def near_config(spec: dict) -> dict | None:
    """``dedup.near`` with its defaults (Spec.swift), or None when off."""
    dedup = spec.get("dedup", {})
    near = False if isinstance(dedup, bool) else dedup.get("near", False)
    if near is False:
        return None
    if near is True:
        near = {}
    if not isinstance(near, dict) or set(near) - set(NEAR_DEFAULTS):
        raise Unsupported(f"dedup.near {near!r} (the tool refuses it)")
    config = {**NEAR_DEFAULTS, **near}
    t, n, p, seed = config["threshold"], config["ngram"], config["permutations"], config["seed"]
    if not (isinstance(t, (int, float)) and 0 < t <= 1 and isinstance(n, int) and n >= 1 and isinstance(p, int)
            and 8 <= p <= 1024 and p % 8 == 0 and config["on"] in ("prompt", "response", "all")
            and isinstance(seed, int) and seed >= 0):
        raise Unsupported(f"dedup.near {near!r} (the tool refuses it)")
    return config


def splitmix64(seed: int) -> Iterator[int]:
    """TokenmillCore/SplitMix64.swift."""
    state = seed & MASK64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


def minhash_family(permutations: int, seed: int) -> tuple[list[int], list[int]]:
    """(a_i, b_i) of h_i(x) = a_i * y + b_i mod 2^32: drawn in turn from SplitMix64(seed ^
    MINHASH_SALT), each the high 32 bits of a draw, a_i made odd."""
    rng = splitmix64(seed ^ MINHASH_SALT)
    a, b = [], []
    for _ in range(permutations):
        a.append((next(rng) >> 32) | 1)
        b.append(next(rng) >> 32)
    return a, b


def minhash_signature(hashes: Sequence[int], a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """For each i, the minimum of h_i over the shingle hashes, with y = low 32 bits of the
    hash XOR its high 32 bits; None for a text without shingles (never a near duplicate)."""
    if not hashes:
        return None
    x = np.array(sorted(set(hashes)), dtype=np.uint64)
    y = (x & np.uint64(MASK32)) ^ (x >> np.uint64(32))
    av = np.array(a, dtype=np.uint64)[:, None]
    bv = np.array(b, dtype=np.uint64)[:, None]
    # a * y + b < 2^64 (both factors < 2^32), so only the final mod 2^32 is needed.
    return tuple(int(v) for v in ((av * y[None, :] + bv) & np.uint64(MASK32)).min(axis=1))


def band_bucket(signature: Sequence[int], band: int, rows: int) -> int:
    """A band's bucket: the high 32 bits of xxh3-64 over its ``rows`` values as u32 LE (the
    tool sorts keys whose high half is that and low half the record's number)."""
    values = signature[band * rows : (band + 1) * rows]
    return xxhash.xxh3_64_intdigest(struct.pack(f"<{rows}I", *values)) >> 32


def estimated_jaccard(x: Sequence[int], y: Sequence[int]) -> float:
    return sum(1 for u, v in zip(x, y) if u == v) / len(x)


def confirmation_level(threshold: float, permutations: int) -> float:
    """The estimate a candidate pair must reach: t - 1.5 sqrt(t(1-t)/P)."""
    return threshold - 1.5 * math.sqrt(threshold * (1 - threshold) / permutations)


@dataclass
class NearResult:
    bands: int
    rows: int
    confirmed_at: float
    removed: set[int]
    # (kept, [(removed, matched, similarity), ...] by removed) by kept: dedup-clusters.jsonl
    clusters: list[tuple[int, list[tuple[int, int, float]]]]
    candidate_pairs: int  # pairs compared, over every band
    confirmed_pairs: int  # distinct edges


def near_duplicates(texts: Sequence[str], config: dict) -> NearResult:
    """Near dedup over the candidates' compared texts, in spec order (indexes into ``texts``).

    In every band, records with equal bucket are a bucket, in index order; each member is
    compared with the earlier members in order until one confirms it (estimated Jaccard >=
    the confirmation level), which is the edge (earlier, member). Clusters are the connected
    components of every band's edges, kept by their smallest index; in dedup-clusters.jsonl
    each removed member's ``matched`` is its parent in a breadth-first walk from the kept
    record, neighbours in index order.
    """
    t, p = config["threshold"], config["permutations"]
    bands, rows = near_dup_oracle.optimal_param(t, p, LSH_FP_WEIGHT, LSH_FN_WEIGHT)
    level = confirmation_level(t, p)
    a, b = minhash_family(p, config["seed"])
    signatures = []
    for text in texts:
        hashes = [near_dup_oracle.shingle_hash(s) for s in near_dup_oracle.shingles(text, config["ngram"])]
        signatures.append(minhash_signature(hashes, a, b))
    edges: dict[tuple[int, int], float] = {}
    compared = 0
    for band in range(bands):
        buckets: dict[int, list[int]] = {}
        for i, sig in enumerate(signatures):
            if sig is not None:
                buckets.setdefault(band_bucket(sig, band, rows), []).append(i)
        for members in buckets.values():
            for m, later in enumerate(members):
                for earlier in members[:m]:
                    compared += 1
                    similarity = estimated_jaccard(signatures[earlier], signatures[later])
                    if similarity >= level:
                        edges[earlier, later] = similarity
                        break
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for (x, y), similarity in edges.items():
        neighbours.setdefault(x, []).append((y, similarity))
        neighbours.setdefault(y, []).append((x, similarity))
    clusters, removed, visited = [], set(), set()
    for kept in sorted(neighbours):
        if kept in visited:
            continue
        visited.add(kept)
        members, queue = [], [kept]
        for x in queue:
            for y, similarity in sorted(neighbours[x]):
                if y not in visited:
                    visited.add(y)
                    queue.append(y)
                    members.append((y, x, similarity))
        removed.update(y for y, _, _ in members)
        clusters.append((kept, sorted(members)))
    return NearResult(bands, rows, level, removed, clusters, compared, len(edges))


# -- decontamination (docs/DEDUP.md "Decontamination"; Dedup/Decontamination.swift,
# Pipeline/Steps/DecontaminateStep.swift) ------------------------------------------------------


def decontaminate_config(spec: dict, spec_path: Path) -> dict | None:
    """``decontaminate`` with its defaults (Spec.swift): eval paths relative to the spec."""
    value = spec.get("decontaminate")
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"against", "field", "ngram"}:
        raise Unsupported(f"decontaminate {value!r} (the tool refuses it)")
    against = value.get("against")
    field_name = value.get("field", "instruction")
    ngram = value.get("ngram", 13)
    if (not isinstance(against, list) or not against or not all(isinstance(f, str) for f in against)
            or not isinstance(field_name, str) or not isinstance(ngram, int) or ngram < 1):
        raise Unsupported(f"decontaminate {value!r} (the tool refuses it)")
    paths = [Path(spec_path).parent / f for f in against]
    if not all(path.is_file() for path in paths):
        raise Unsupported(f"decontaminate.against {against!r}: a file does not exist (the tool refuses it)")
    return {"against": paths, "field": field_name, "ngram": ngram}


def eval_texts(path: Path, field_name: str) -> list[tuple[int, str]]:
    """(line, text) for every string at ``field_name`` of an eval file's records.

    A JSON array (first non-blank byte ``[``): its elements, numbered from 1; else JSONL,
    each line not blank numbered by its line. The field is a dotted path (a numeric part
    indexes a list); its value is a string, or a non-empty list of strings giving each.
    Anything else is a bad eval record: the build fails (BadInput).
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unsupported(f"{path}: invalid UTF-8 in an eval file") from error
    parts = [p for p in field_name.split(".") if p]

    def take(value, line: int) -> list[tuple[int, str]]:
        cur = value
        for part in parts:
            if re.fullmatch(r"[+-]?[0-9]+", part) and isinstance(cur, list):
                k = int(part)
                cur = cur[k] if 0 <= k < len(cur) else None
            else:
                cur = cur.get(part) if isinstance(cur, dict) else None
        if _is_string(cur):
            found = [cur]
        elif isinstance(cur, list) and cur and all(_is_string(x) for x in cur):
            found = cur
        else:
            raise BadInput(f"{path}:{line}: eval record has no string (or list of strings) at {field_name!r}")
        if any(LONE_SURROGATE.search(s) for s in found):
            raise Unsupported(f"{path}:{line}: a lone surrogate escape in an eval text")
        return [(line, s) for s in found]

    out = []
    if text.lstrip(" \n\r\t").startswith("["):
        try:
            rows = _json(text)
        except ValueError as error:
            raise BadInput(f"{path}: invalid JSON") from error
        for k, row in enumerate(rows if isinstance(rows, list) else []):
            out += take(row, k + 1)
        return out
    for k, line in enumerate(text.split("\n")):
        if not line.strip(" \r\t"):
            continue
        try:
            row = _json(line)
        except ValueError as error:
            raise BadInput(f"{path}:{k + 1}: invalid JSON") from error
        out += take(row, k + 1)
    return out


def eval_shingles(config: dict, normalized: dict | None = None) -> dict[int, tuple[int, int]]:
    """Each eval shingle's hash -> (file number, line) of the first eval text that has it.
    The eval texts are normalized as the records are (``normalized``: the build's
    normalize config; None when normalization is off)."""
    owners: dict[int, tuple[int, int]] = {}
    for f, path in enumerate(config["against"]):
        for line, text in eval_texts(path, config["field"]):
            if normalized is not None:
                text = normalize(text, normalized)
            for s in near_dup_oracle.shingles(text, config["ngram"]):
                owners.setdefault(near_dup_oracle.shingle_hash(s), (f, line))
    return owners


def contamination(rec: Rec, owners: dict[int, tuple[int, int]], ngram: int) -> tuple[int, int, str] | None:
    """The first shingle of the record's ``all`` text (in text order) an eval text has:
    (eval file number, eval line, the shingle as compared), or None."""
    for s in near_dup_oracle.shingles(rec.dedup_text("all"), ngram):
        owner = owners.get(near_dup_oracle.shingle_hash(s))
        if owner is not None:
            return (*owner, s)
    return None


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
    names = [s.get("name", f"source{k}") for k, s in enumerate(spec["sources"])]
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


def kept_records(spec_path: Path, tokens_of=None, trains=None,
                 report: dict | None = None) -> tuple[list[Rec], Counter]:
    """The records a build keeps, in spec order (a record ``mix`` repeats appears that many
    times in a row); plus per-source counts (read, rejected, records, filtered, exact_dup,
    near_dup, decontaminated, ...; ``(source, "reason", r)`` per filter reason).
    ``tokens_of(rec)`` gives a record's rendered length, for ``sample.tokens`` and ``mix`` by
    tokens; ``trains(rec)`` whether its rendered loss mask holds a 1 (a record that trains
    on nothing is filtered as ``no_trained_tokens``, after dedup: ShapeStep).

    The order is docs/DEDUP.md's: filter, exact dedup, near dedup (over the records left),
    decontamination (of the records near dedup kept), then the rest. ``report``, when given,
    receives what dedup-clusters.jsonl, decontaminated.jsonl and report.json's
    ``near_dedup`` should say: ``near`` (a dict: bands, rows, confirmed_at, clusters as
    {kept, removed} with (source, line) records, candidate_pairs, confirmed_pairs) and
    ``decontaminated`` (one dict a record, as the file's lines).
    """
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    config = normalize_config(spec.get("normalize", True))
    limits = filter_config(spec)
    on = dedup_field(spec)
    seen: set[str] = set()
    kept: list[Rec] = []
    lines: list[int] = []  # each kept record's line, for the dedup files
    counts: Counter = Counter()
    for k, source in enumerate(spec["sources"]):
        name = source.get("name", f"source{k}")
        for key in ("read", "rejected", "records", "repaired_utf8", "filtered", "exact_dup", "near_dup",
                    "decontaminated", "subsampled", "kept"):
            counts[name, key] += 0
        for line, raw in source_records(spec_path, spec, k, counts):
            rec = normalize_record(raw, config)
            reason = filter_reason(rec, limits)
            if reason:
                counts[name, "filtered"] += 1
                counts[name, "reason", reason] += 1
                continue
            key = rec.key(on) if on else None
            if key and key in seen:
                counts[name, "exact_dup"] += 1
                continue
            if key:
                seen.add(key)
            counts[name, "kept"] += 1
            kept.append(rec)
            lines.append(line)

    def where(i: int) -> dict:
        return {"source": kept[i].source, "line": lines[i]}

    near = near_config(spec)
    if near is not None:
        result = near_duplicates([rec.dedup_text(near["on"]) for rec in kept], near)
        if report is not None:
            clusters = [{"kept": where(c), "removed": [{**where(y), "similarity": sim, "matched": where(x)}
                                                      for y, x, sim in members]}
                        for c, members in result.clusters]
            report["near"] = {"bands": result.bands, "rows": result.rows, "confirmed_at": result.confirmed_at,
                              "clusters": clusters, "candidate_pairs": result.candidate_pairs,
                              "confirmed_pairs": result.confirmed_pairs}
        for i in sorted(result.removed):
            counts[kept[i].source, "kept"] -= 1
            counts[kept[i].source, "near_dup"] += 1
        survivors = [i for i in range(len(kept)) if i not in result.removed]
        kept, lines = [kept[i] for i in survivors], [lines[i] for i in survivors]
    decontaminate = decontaminate_config(spec, spec_path)
    if decontaminate is not None:
        owners = eval_shingles(decontaminate, config)
        hits = [contamination(rec, owners, decontaminate["ngram"]) for rec in kept]
        if report is not None:
            report["decontaminated"] = [
                {**where(i), "against": decontaminate["against"][hit[0]].name, "eval_line": hit[1], "ngram": hit[2]}
                for i, hit in enumerate(hits) if hit is not None]
        for rec, hit in zip(kept, hits):
            if hit is not None:
                counts[rec.source, "kept"] -= 1
                counts[rec.source, "decontaminated"] += 1
        kept = [rec for rec, hit in zip(kept, hits) if hit is None]
    if trains is not None:
        for rec in kept:
            if not trains(rec):
                counts[rec.source, "kept"] -= 1
                counts[rec.source, "filtered"] += 1
                counts[rec.source, "reason", "no_trained_tokens"] += 1
        kept = [rec for rec in kept if trains(rec)]
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


# -- templates (docs/TEMPLATES.md; Packing/Template.swift, CustomTemplate.swift) ---------------


@dataclass(frozen=True)
class Part:
    """Text around a turn of a custom template, and whether its tokens are trained on."""

    text: str = ""
    loss: bool = False


@dataclass(frozen=True)
class Template:
    """A template as Pipeline/Spec.swift parseTemplate reads the spec's ``template``."""

    kind: str  # a built-in's name, or "custom"
    name: str  # index.json's "template"
    loss: str = "all_turns"  # or "last_turn"
    bos: str | None = None
    eos: str = "assistant"  # custom: "assistant" | "end" | "none"
    default_system: str | None = None
    special_tokens: tuple[str, ...] = ()  # custom: in the order they are added to a vocabulary
    parts: tuple[tuple[str, Part], ...] = ()  # custom: ("user.before", Part), ...

    def part(self, key: str) -> Part:
        return dict(self.parts).get(key, Part(loss=key == "assistant.after"))

    @property
    def specials(self) -> tuple[str, ...]:
        """The special tokens the template emits besides EOS (ChatTemplate.specialTokens)."""
        if self.kind == "chatml":
            return ("<|im_start|>", "<|im_end|>")
        if self.kind == "llama3":
            return LLAMA3_TOKENS
        return self.special_tokens

    @property
    def end_marker(self) -> str | None:
        """What closes a built-in's assistant turn (trained with it); None for custom."""
        return {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "custom": None}.get(self.kind, "<|endoftext|>")


def parse_template(value) -> Template:
    """The spec's ``template``: a built-in's name, ``{"name": built-in, "loss": ...}``, or a
    custom template (any of bos, eos, default_system, special_tokens, system, user,
    assistant). Anything the tool refuses is Unsupported here."""
    if isinstance(value, str):
        if value not in BUILTIN_TEMPLATES:
            raise Unsupported(f"template {value!r}")
        return Template(value, value)
    if not isinstance(value, dict):
        raise Unsupported(f"template {value!r}")
    roles = ("system", "user", "assistant")
    allowed = {"name", "loss", "bos", "eos", "default_system", "special_tokens", *roles}
    if set(value) - allowed:
        raise Unsupported(f"template keys {sorted(set(value) - allowed)} (the tool refuses them)")
    loss = value.get("loss", "all_turns")
    if loss not in ("all_turns", "last_turn"):
        raise Unsupported(f"template.loss {loss!r}")
    name = value.get("name")
    if not set(value) & (allowed - {"name", "loss"}):
        if name not in BUILTIN_TEMPLATES:
            raise Unsupported(f"template.name {name!r}")
        return Template(name, name, loss)
    if name in BUILTIN_TEMPLATES:
        raise Unsupported(f"a custom template named like the built-in {name!r} (the tool refuses it)")
    specials = list(value.get("special_tokens", []))
    if not all(isinstance(s, str) and s for s in specials) or len(set(specials)) != len(specials):
        raise Unsupported("template.special_tokens (the tool refuses them)")
    bos = value.get("bos")
    if bos is not None and bos not in specials:
        specials.insert(0, bos)
    eos = value.get("eos", "assistant")
    if eos not in ("assistant", "end", "none"):
        raise Unsupported(f"template.eos {eos!r}")
    parts = []
    for role in roles:
        block = value.get(role, {})
        if not isinstance(block, dict) or set(block) - {"before", "after"}:
            raise Unsupported(f"template.{role} {block!r}")
        for side in ("before", "after"):
            if side not in block:
                continue
            default = role == "assistant" and side == "after"
            p = block[side]
            if isinstance(p, str):
                parts.append((f"{role}.{side}", Part(p, default)))
            elif isinstance(p, dict) and "text" in p and not set(p) - {"text", "loss"}:
                parts.append((f"{role}.{side}", Part(p["text"], bool(p.get("loss", default)))))
            else:
                raise Unsupported(f"template.{role}.{side} {p!r}")
    return Template("custom", name if name is not None else "custom", loss, bos, eos, value.get("default_system"),
                    tuple(specials), tuple(parts))


class SegmentBuilder:
    """Packing/Template.swift SegmentBuilder: adjacent text of equal loss merges unless a
    break was asked for since the last text or special; empty text is nothing (it leaves a
    pending break pending)."""

    def __init__(self) -> None:
        self.segments: list[list] = []  # [text or ("special", name), loss]
        self.may_merge = True

    def text(self, s: str, loss: int) -> None:
        if not s:
            return
        last = self.segments[-1] if self.segments else None
        if self.may_merge and last is not None and isinstance(last[0], str) and last[1] == loss:
            last[0] += s
        else:
            self.segments.append([s, loss])
        self.may_merge = True

    def special(self, name: str, loss: int) -> None:
        self.segments.append([("special", name), loss])
        self.may_merge = True

    def break_text(self) -> None:
        self.may_merge = False


def emit_part(b: SegmentBuilder, part: Part, specials: Sequence[str], trained: bool = True) -> None:
    """CustomTemplate.emit: a part's text, split at the special tokens it names (the
    earliest occurrence first, the longest on a tie); ``trained`` false clears its loss."""
    loss = int(part.loss and trained)
    rest = part.text.encode("utf-8")
    while rest:
        best = None
        for name in specials:
            n = name.encode("utf-8")
            at = rest.find(n)
            if n and at >= 0 and (best is None or at < best[0] or (at == best[0] and len(n) > len(best[1].encode("utf-8")))):
                best = (at, name)
        if best is None:
            b.text(rest.decode("utf-8"), loss)
            return
        at, name = best
        if at > 0:
            b.text(rest[:at].decode("utf-8"), loss)
        b.special(name, loss)
        rest = rest[at + len(name.encode("utf-8")) :]


def template_segments(t: Template, rec: Rec, eos: str) -> list[tuple[str | tuple, int]]:
    """ChatTemplate.render: (text or ("special", name), loss) pairs."""
    b = SegmentBuilder()
    if rec.kind == "text":
        b.text(rec.text, 1)
        b.special(eos, 1)
        return [tuple(s) for s in b.segments]
    assistants = [i for i, (r, _) in enumerate(rec.turns) if r == ASSISTANT]
    last = assistants[-1] if assistants else -1

    def trained(i: int) -> int:
        return int(t.loss == "all_turns" or i == last)

    kind = t.kind
    if kind == "custom":
        specials = t.special_tokens
        if t.bos is not None:
            b.special(t.bos, 0)
        system = rec.system if rec.system else t.default_system
        if system is not None:
            emit_part(b, t.part("system.before"), specials)
            b.text(system, 0)
            emit_part(b, t.part("system.after"), specials)
        for i, (role, content) in enumerate(rec.turns):
            if i > 0 and role == USER:
                b.break_text()  # a new exchange starts a new segment (Template.swift)
            if role == USER:
                emit_part(b, t.part("user.before"), specials)
                b.text(content, 0)
                emit_part(b, t.part("user.after"), specials)
            else:
                emit_part(b, t.part("assistant.before"), specials)
                b.break_text()
                b.text(content, trained(i))
                emit_part(b, t.part("assistant.after"), specials, bool(trained(i)))
                if t.eos == "assistant":
                    b.special(eos, trained(i))
        if t.eos == "end":
            b.special(eos, 1)
    elif kind == "plain":
        if rec.system:
            b.text(rec.system, 0)
            b.text("\n", 0)
        for i, (role, content) in enumerate(rec.turns):
            if i > 0 and role == USER:
                b.break_text()  # a new exchange starts a new segment (Template.swift)
            if role == USER:
                if i > 0:
                    b.text("\n", 0)
                b.text(content, 0)
                b.text("\n", 0)
            else:
                b.break_text()
                b.text(content, trained(i))
                b.special(eos, trained(i))
    elif kind == "alpaca":
        b.text(rec.system or ALPACA_DEFAULT_SYSTEM, 0)
        b.text("\n\n", 0)
        for i, (role, content) in enumerate(rec.turns):
            if i > 0 and role == USER:
                b.break_text()  # a new exchange starts a new segment (Template.swift)
            if role == USER:
                if i > 0:
                    b.text("\n\n", 0)
                b.text("### Instruction:\n", 0)
                b.text(content, 0)
                b.text("\n\n### Response:\n", 0)
            else:
                b.break_text()
                b.text(content, trained(i))
                b.special(eos, trained(i))
    elif kind == "llama3":
        b.special("<|begin_of_text|>", 0)

        def header(role: str) -> None:
            b.special("<|start_header_id|>", 0)
            b.text(role, 0)
            b.special("<|end_header_id|>", 0)
            b.text("\n\n", 0)

        if rec.system:
            header("system")
            b.text(rec.system, 0)
            b.special("<|eot_id|>", 0)
        for i, (role, content) in enumerate(rec.turns):
            if i > 0 and role == USER:
                b.break_text()  # a new exchange starts a new segment (Template.swift)
            if role == USER:
                header("user")
                b.text(content, 0)
                b.special("<|eot_id|>", 0)
            else:
                header("assistant")
                b.break_text()
                b.text(content, trained(i))
                b.special("<|eot_id|>", trained(i))
    elif kind == "align-anything":
        # PKU-Alignment's safe-rlhf: PROMPT_BEGIN, PROMPT_USER 'USER: {input} ', 'ASSISTANT:'.
        b.text("BEGINNING OF CONVERSATION: ", 0)
        if rec.system:
            b.text(rec.system, 0)
            b.text(" ", 0)
        for i, (role, content) in enumerate(rec.turns):
            if i > 0 and role == USER:
                b.break_text()  # a new exchange starts a new segment (Template.swift)
            if role == USER:
                b.text("USER: ", 0)
                b.text(content, 0)
                b.text(" ", 0)
                b.text("ASSISTANT:", 0)
            else:
                b.break_text()
                b.text(content, trained(i))
                b.special(eos, trained(i))
    elif kind == "chatml":
        if rec.system:
            b.special("<|im_start|>", 0)
            b.text("system\n", 0)
            b.text(rec.system, 0)
            b.special("<|im_end|>", 0)
            b.text("\n", 0)
        for i, (role, content) in enumerate(rec.turns):
            if i > 0 and role == USER:
                b.break_text()  # a new exchange starts a new segment (Template.swift)
            b.special("<|im_start|>", 0)
            if role == USER:
                b.text("user\n", 0)
                b.text(content, 0)
                b.special("<|im_end|>", 0)
            else:
                b.text("assistant\n", 0)
                b.break_text()
                b.text(content, trained(i))
                b.special("<|im_end|>", trained(i))
            b.text("\n", 0)
    else:
        raise Unsupported(f"template kind {kind!r}")
    return [tuple(s) for s in b.segments]


class Renderer:
    """Turns records into documents for one template and tokenizer.

    ``template`` is the spec's ``template`` value (a name or an object) or a
    :class:`Template`; ``encoding`` is a tiktoken Encoding that knows the special tokens
    (for decoding); ``specials`` maps every special token the template emits, and ``eos``
    (the tokenizer's EOS, ``<|endoftext|>`` for the tiktoken vocabularies), to its id.
    """

    def __init__(self, template, encoding: Any, specials: dict[str, int], eos: str = "<|endoftext|>") -> None:
        self.template = template if isinstance(template, Template) else parse_template(template)
        self.encoding = encoding
        self.specials = specials
        self.eos = eos

    def segments(self, rec: Rec) -> list[tuple[str | int, int]]:
        """(text or special id, loss) pairs; adjacent texts of one loss already joined
        (unless the template breaks them: an assistant's content starts its own)."""
        return [(self.specials[p[1]] if isinstance(p, tuple) else p, loss)
                for p, loss in template_segments(self.template, rec, self.eos)]

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
