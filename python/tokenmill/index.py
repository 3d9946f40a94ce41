"""``index.json``: the dataset's table of contents (docs/FORMAT.md §2).

Checked as ``tokenmill verify`` checks it (§2.5): UTF-8 JSON without duplicate keys, every
key the writer writes present with its type, counts non-negative, hashes as 16 lowercase
hex digits, ``dtype`` matching ``vocab_size``, plain shard names, and each split's
``records``, ``tokens`` and ``bytes`` the sums over its shards. What needs the shards
(``documents``, ``padding_tokens``) is checked by :meth:`tokenmill.Dataset.verify`.
``sources`` is informative: only its type is checked; :attr:`Index.raw` has it all.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from .errors import ShardError

INDEX_NAME = "index.json"
FORMAT_NAME = "tokenmill-shards"
_HEX16 = re.compile(r"[0-9a-f]{16}")
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)")
# A shard name is a plain file name inside the directory: never a path that escapes it.
_SHARD_NAME = re.compile(r"[A-Za-z0-9_.-]+\.tkm")
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class ShardEntry:
    file: str
    records: int
    tokens: int
    bytes: int
    checksum: int


@dataclass(frozen=True)
class SplitEntry:
    name: str
    records: int
    tokens: int
    #: Real documents (1.1): document starts minus each padded sequence's padding document.
    #: In a 1.0 index it counted the padding documents too.
    documents: int
    #: Tokens of padding (strategy ``pad``; 0 otherwise); None in a 1.0 index.
    padding_tokens: int | None
    bytes: int
    shards: tuple[ShardEntry, ...]


@dataclass(frozen=True)
class Index:
    path: str
    #: ``format_version`` as (major, minor).
    version: tuple[int, int]
    vocab_size: int
    eos_id: int
    pad_id: int
    dtype: str
    seq_len: int
    strategy: str
    splits: dict[str, SplitEntry]
    raw: dict[str, Any]


_KIND_NAMES = {int: "an integer", str: "a string", dict: "an object", list: "an array"}


def _field(obj: Any, key: str, kind: type, path: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise ShardError(path, where, "is not an object")
    if key not in obj:
        raise ShardError(path, where, f"missing key {key!r}")
    value = obj[key]
    # bool is an int in Python; a count of `true` is still damage.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ShardError(path, f"{where}.{key}", f"{json.dumps(value)} is not {_KIND_NAMES[kind]}")
    return value


def _check_count(value: Any, path: str, at: str, minimum: int = 0, below: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShardError(path, at, f"{json.dumps(value)} is not an integer")
    if value > _INT64_MAX:
        raise ShardError(path, at, f"{value} is out of range")
    if value < minimum:
        raise ShardError(path, at, f"{value} is below {minimum}")
    if below is not None and value >= below:
        raise ShardError(path, at, f"{value} is not below {below}")
    return value


def _count(obj: Any, key: str, path: str, where: str, minimum: int = 0, below: int | None = None) -> int:
    value = _field(obj, key, int, path, where)
    return _check_count(value, path, f"{where}.{key}", minimum, below)


def _hex16(obj: Any, key: str, path: str, where: str) -> str:
    value = _field(obj, key, str, path, where)
    if not _HEX16.fullmatch(value):
        raise ShardError(path, f"{where}.{key}", f"{value!r} is not 16 lowercase hex digits")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_strings(value: Any) -> None:
    """Raise UnicodeEncodeError for a lone surrogate (a ``\\ud800`` escape) anywhere."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode("utf-8")
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def load_index(directory: str | os.PathLike[str]) -> Index:
    """Read and check ``DIR/index.json``.

    A directory without ``index.json`` raises ``FileNotFoundError``: per the format the
    dataset does not exist until that file does (a build may still be running).
    """
    path = os.path.join(os.fspath(directory), INDEX_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path}: no index.json (not a tokenmill dataset, or its build has not finished)"
        )
    with open(path, "rb") as file:
        data = file.read()
    try:
        raw = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
        _check_strings(raw)
    except (UnicodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise ShardError(path, "index.json", f"not valid UTF-8 JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ShardError(path, "index.json", "top level is not an object")
    top = "index.json"
    fmt = _field(raw, "format", str, path, top)
    if fmt != FORMAT_NAME:
        raise ShardError(path, "format", f"{fmt!r}, expected {FORMAT_NAME!r}")
    version_text = _field(raw, "format_version", str, path, top)
    match = _VERSION.fullmatch(version_text)
    if not match:
        raise ShardError(path, "format_version", f"{version_text!r} is not MAJOR.MINOR")
    version = (int(match.group(1)), int(match.group(2)))
    if version[0] != 1:
        raise ShardError(path, "format_version", f"{version_text!r} unsupported; this reader reads 1.x")
    _field(raw, "tool_version", str, path, top)
    _hex16(raw, "spec_hash", path, top)
    _field(raw, "name", str, path, top)

    tokenizer = _field(raw, "tokenizer", dict, path, top)
    _field(tokenizer, "name", str, path, "tokenizer")
    _hex16(tokenizer, "vocab_hash", path, "tokenizer")
    # Ids are stored as u32 at most, so no vocabulary has more than 2^32 of them.
    vocab_size = _count(tokenizer, "vocab_size", path, "tokenizer", minimum=1, below=(1 << 32) + 1)
    eos_id = _count(tokenizer, "eos_id", path, "tokenizer", below=vocab_size)
    pad_id = _count(tokenizer, "pad_id", path, "tokenizer", below=vocab_size)
    for text, token in _field(tokenizer, "special_tokens", dict, path, "tokenizer").items():
        _check_count(token, path, f"tokenizer.special_tokens.{text}", below=vocab_size)
    if "file" in tokenizer:  # the vocabulary copied beside the shards (FORMAT.md 2.3)
        vocabulary = _field(tokenizer, "file", str, path, "tokenizer")
        if vocabulary not in ("tokenizer.json", "tokenizer.model"):
            raise ShardError(path, "tokenizer.file", f"{vocabulary!r} is not 'tokenizer.json' or 'tokenizer.model'")
    _field(raw, "template", str, path, top)
    seq_len = _count(raw, "seq_len", path, top, minimum=1)
    pack = _field(raw, "pack", dict, path, top)
    strategy = _field(pack, "strategy", str, path, "pack")
    _field(pack, "overflow", str, path, "pack")
    dtype = _field(raw, "dtype", str, path, top)
    expected_dtype = "uint16" if vocab_size <= 65536 else "uint32"
    if dtype != expected_dtype:
        raise ShardError(path, "dtype", f"{dtype!r}, but vocab_size {vocab_size} needs {expected_dtype!r}")

    splits: dict[str, SplitEntry] = {}
    for name, split in _field(raw, "splits", dict, path, top).items():
        where = f"splits.{name}"
        shards = []
        for k, shard in enumerate(_field(split, "shards", list, path, where)):
            at = f"{where}.shards[{k}]"
            file = _field(shard, "file", str, path, at)
            if not _SHARD_NAME.fullmatch(file) or file.startswith("."):
                raise ShardError(path, f"{at}.file", f"{file!r} is not a shard file name")
            shards.append(
                ShardEntry(
                    file,
                    _count(shard, "records", path, at),
                    _count(shard, "tokens", path, at),
                    _count(shard, "bytes", path, at),
                    int(_hex16(shard, "checksum", path, at), 16),
                )
            )
        entry = SplitEntry(
            name,
            _count(split, "records", path, where),
            _count(split, "tokens", path, where),
            _count(split, "documents", path, where),
            _count(split, "padding_tokens", path, where) if version[1] >= 1 else None,
            _count(split, "bytes", path, where),
            tuple(shards),
        )
        for key in ("records", "tokens", "bytes"):
            total = sum(getattr(s, key) for s in shards)
            if getattr(entry, key) != total:
                raise ShardError(
                    path, f"{where}.{key}", f"{getattr(entry, key)}, but its shards sum to {total}"
                )
        splits[name] = entry
    if "train" not in splits:
        raise ShardError(path, "splits", "no 'train' split")
    _field(raw, "sources", dict, path, top)
    return Index(path, version, vocab_size, eos_id, pad_id, dtype, seq_len, strategy, splits, raw)
