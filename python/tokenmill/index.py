"""``index.json``: the dataset's table of contents (docs/FORMAT.md §2).

Only the fields a reader depends on are checked (format, major version, vocabulary size,
dtype, each split's shard list and totals); the rest (sources, spec hash, tool version)
is informative and passed through untouched in :attr:`Index.raw`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from .errors import ShardError

INDEX_NAME = "index.json"
_HEX16 = re.compile(r"[0-9a-f]{16}")
# A shard name is a plain file name inside the directory: never a path that escapes it.
_SHARD_NAME = re.compile(r"[A-Za-z0-9_.-]+\.tkm")


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
    bytes: int
    shards: tuple[ShardEntry, ...]


@dataclass(frozen=True)
class Index:
    path: str
    vocab_size: int
    dtype: str
    splits: dict[str, SplitEntry]
    raw: dict[str, Any]


_KIND_NAMES = {int: "an integer", str: "a string", dict: "an object", list: "an array"}


def _field(obj: Any, key: str, kind: type, path: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ShardError(path, where, f"missing key {key!r}")
    value = obj[key]
    # bool is an int in Python; a count of `true` is still damage.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ShardError(path, f"{where}.{key}", f"{json.dumps(value)} is not {_KIND_NAMES[kind]}")
    return value


def _count(obj: Any, key: str, path: str, where: str) -> int:
    value = _field(obj, key, int, path, where)
    if value < 0:
        raise ShardError(path, f"{where}.{key}", f"{value} is negative")
    return value


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
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShardError(path, "index.json", f"not UTF-8 JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ShardError(path, "index.json", "top level is not an object")
    if raw.get("format") != "tokenmill-shards":
        raise ShardError(path, "format", f"{raw.get('format')!r}, expected 'tokenmill-shards'")
    version = _field(raw, "format_version", str, path, "index.json")
    if version.split(".")[0] != "1":
        raise ShardError(path, "format_version", f"{version!r} unsupported; this reader reads 1.x")

    tokenizer = _field(raw, "tokenizer", dict, path, "index.json")
    vocab_size = _count(tokenizer, "vocab_size", path, "tokenizer")
    if vocab_size == 0:
        raise ShardError(path, "tokenizer.vocab_size", "0")
    dtype = _field(raw, "dtype", str, path, "index.json")
    expected_dtype = "uint16" if vocab_size <= 65536 else "uint32"
    if dtype != expected_dtype:
        raise ShardError(path, "dtype", f"{dtype!r}, but vocab_size {vocab_size} needs {expected_dtype!r}")

    splits: dict[str, SplitEntry] = {}
    for name, split in _field(raw, "splits", dict, path, "index.json").items():
        where = f"splits.{name}"
        shards = []
        for k, shard in enumerate(_field(split, "shards", list, path, where)):
            at = f"{where}.shards[{k}]"
            file = _field(shard, "file", str, path, at)
            if not _SHARD_NAME.fullmatch(file) or file.startswith("."):
                raise ShardError(path, f"{at}.file", f"{file!r} is not a shard file name")
            checksum = _field(shard, "checksum", str, path, at)
            if not _HEX16.fullmatch(checksum):
                raise ShardError(path, f"{at}.checksum", f"{checksum!r} is not 16 lowercase hex digits")
            shards.append(
                ShardEntry(
                    file,
                    _count(shard, "records", path, at),
                    _count(shard, "tokens", path, at),
                    _count(shard, "bytes", path, at),
                    int(checksum, 16),
                )
            )
        entry = SplitEntry(
            name,
            _count(split, "records", path, where),
            _count(split, "tokens", path, where),
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
    return Index(path, vocab_size, dtype, splits, raw)
