"""Every text string in the shared data folder (``<repo>/../shared/data``), for exactness tests.

The folder is not part of the repository; callers skip when :func:`shared_data_dir`
returns None. Strings are gathered from every value of every record (not keys), so
prompts, responses, conversation turns and metadata all count; ``.txt`` files give the
whole file and each of its lines. Parquet needs pyarrow: without it those files are
listed in ``skipped`` rather than failing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path | None:
    """``$TOKENMILL_SHARED_DATA`` or ``<repo>/../shared/data``, when it exists."""
    path = Path(os.environ.get("TOKENMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


def read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped or un-zstd'ed by extension."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        # Streaming, since some frames do not state their content size.
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


def base_kind(path: Path) -> str:
    """The format extension under any compression: ``a.jsonl.zst`` -> ``.jsonl``."""
    name = path.name
    for compression in (".gz", ".zst"):
        if name.endswith(compression):
            name = name[: -len(compression)]
    return Path(name).suffix


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


@dataclass
class Collected:
    texts: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _strings_of_file(path: Path) -> Iterator[str]:
    kind = base_kind(path)
    if kind == ".parquet":
        import pyarrow.parquet as pq  # ImportError handled by the caller

        yield from strings_in(pq.read_table(path).to_pylist())
        return
    text = read_bytes(path).decode("utf-8")
    if kind == ".json":
        yield from strings_in(json.loads(text))
    elif kind == ".jsonl":
        for line in text.split("\n"):
            if not line.strip():
                continue
            try:
                yield from strings_in(json.loads(line))
            except json.JSONDecodeError:
                # The data keeps a few invalid lines on purpose; the raw line is text too.
                yield line
    elif kind == ".csv":
        for row in csv.reader(io.StringIO(text, newline="")):
            yield from row
    elif kind == ".txt":
        yield text
        yield from text.split("\n")


KINDS = (".json", ".jsonl", ".csv", ".txt", ".parquet")


def collect(root: Path, kinds: tuple[str, ...] = KINDS) -> Collected:
    """All distinct strings under ``root``, in a fixed order (sorted files, first occurrence).

    ``kinds`` limits the formats read (by extension under any compression).
    """
    out = Collected()
    seen: set[str] = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if base_kind(path) not in kinds:
            continue
        rel = str(path.relative_to(root))
        try:
            strings = list(_strings_of_file(path))
        except ImportError:
            out.skipped.append(f"{rel} (pyarrow is not installed)")
            continue
        out.files.append(rel)
        for s in strings:
            if s in seen:
                continue
            seen.add(s)
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate from a JSON \ud800 escape: not text any tokenizer takes.
                continue
            out.texts.append(s)
    return out
