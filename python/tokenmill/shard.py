"""One ``.tkm`` shard file, memory-mapped, with random access to its records.

Opening a shard reads and checks only its header, trailer and footer (a few KB, however
large the file): that is enough to know every chunk's position and record range. A
chunk's bytes are hashed, decompressed and validated the first time one of its records
is read; :meth:`Shard.verify` does that for every chunk and hashes the whole file.

The file is memory-mapped rather than read so that many shards can stay open at no cost
and the page cache is shared between data-loader worker processes. Slicing the map
copies the compressed frame (a few hundred KB), which keeps no buffer export alive and
lets :meth:`Shard.close` always succeed.
"""

from __future__ import annotations

import itertools
import mmap
import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import xxhash

from .cache import LRUCache
from .chunk import Chunk, Record, decode_chunk, decompress_frame, stored_padding
from .errors import ShardError
from .format import HEADER_SIZE, TRAILER_SIZE, Footer, Header, parse_footer, parse_header, parse_trailer

_HASH_STEP = 8 << 20
# Cache keys: a counter, not id(), since a freed shard's id can be reused by a new one.
_SHARD_KEYS = itertools.count()


class Contents(NamedTuple):
    """What :meth:`Shard.verify` counted: document starts (sum of ``d[r]``) and, when asked
    to apply the padding rule of strategy ``pad``, the padded records and padding tokens."""

    document_starts: int
    padded_records: int
    padding_tokens: int


class Shard:
    """Random access to the records of one shard file.

    ``vocab_size`` (from ``index.json``) makes every decoded chunk reject token ids at or
    beyond it; ``expected_size`` makes opening reject a file of another size before
    reading it. ``cache`` may be shared between shards; by default each shard keeps its
    own 4 most recent chunks.

    >>> shard = Shard("out/train-00000.tkm", vocab_size=100277)   # doctest: +SKIP
    >>> shard[0].tokens[:5]                                        # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        vocab_size: int | None = None,
        expected_size: int | None = None,
        cache: LRUCache[Chunk] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.vocab_size = vocab_size
        self._cache: LRUCache[Chunk] = cache if cache is not None else LRUCache(4)
        self._map: mmap.mmap | None = None
        self._key = next(_SHARD_KEYS)
        try:
            with open(self.path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if expected_size is not None and size != expected_size:
                    raise ShardError(self.path, "file", f"{size} bytes, index.json says {expected_size}")
                if size < HEADER_SIZE + TRAILER_SIZE:
                    raise ShardError(
                        self.path, "file", f"{size} bytes: too small for a header and trailer (64)"
                    )
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise ShardError(self.path, "file", "missing") from None
        self.size = size
        self.header: Header = parse_header(self._map[0:HEADER_SIZE], self.path)
        trailer = parse_trailer(self._map[size - TRAILER_SIZE : size], size, self.path)
        footer_bytes = self._map[trailer.footer_offset : trailer.footer_offset + trailer.footer_size]
        self.footer: Footer = parse_footer(footer_bytes, trailer, self.path, self.header.version_minor)
        if vocab_size is not None and self.header.token_width == 2 and vocab_size > 65536:
            raise ShardError(
                self.path, "header.token_width", f"2 bytes cannot hold ids of vocab_size {vocab_size}"
            )

    # -- records ---------------------------------------------------------------------

    def __len__(self) -> int:
        return self.footer.record_count

    @property
    def token_count(self) -> int:
        return self.footer.token_count

    @property
    def chunk_count(self) -> int:
        return len(self.footer.chunks)

    def __getitem__(self, i: int) -> Record:
        """Record ``i`` (``0 <= i < len(self)``), decompressing its chunk if not cached."""
        if not 0 <= i < self.footer.record_count:
            raise IndexError(f"record {i} out of range for {self.path} ({self.footer.record_count} records)")
        c = int(np.searchsorted(self.footer.record_starts, i, side="right")) - 1
        return self.chunk(c).record(i - self.footer.chunks[c].first_record)

    def __iter__(self) -> Iterator[Record]:
        for c in range(self.chunk_count):
            chunk = self.chunk(c)
            for j in range(len(chunk)):
                yield chunk.record(j)

    def chunk(self, c: int) -> Chunk:
        """Chunk ``c``, validated; served from the cache when it was read recently."""
        key = (self._key, c)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._load_chunk(c)
            self._cache.put(key, cached)
        return cached

    def _load_chunk(self, c: int) -> Chunk:
        entry = self.footer.chunks[c]
        frame = self._mapped()[entry.offset : entry.offset + entry.compressed_size]
        data = decompress_frame(frame, entry, self.path)
        return decode_chunk(data, entry, self.header.token_width, self.vocab_size, self.path)

    # -- whole-file checks -----------------------------------------------------------

    def file_checksum(self) -> int:
        """xxh3-64 of the whole file, as ``index.json`` records it (reads every byte)."""
        mapped = self._mapped()
        hasher = xxhash.xxh3_64()
        for start in range(0, self.size, _HASH_STEP):
            hasher.update(mapped[start : start + _HASH_STEP])
        return hasher.intdigest()

    def verify(self, checksum: int | None = None, pad: tuple[int, int] | None = None) -> Contents:
        """Check the whole-file hash (when given) and decode every chunk, bypassing the cache.

        ``pad`` = ``(seq_len, pad_id)`` also checks every record against the padding rule of
        strategy ``pad`` (docs/FORMAT.md §1.2). Returns what the chunks hold.
        """
        if checksum is not None:
            computed = self.file_checksum()
            if computed != checksum:
                raise ShardError(
                    self.path,
                    "file",
                    f"checksum mismatch: index.json says {checksum:016x}, computed {computed:016x}",
                )
        starts = padded = padding = 0
        for c in range(self.chunk_count):
            chunk = self._load_chunk(c)
            starts += len(chunk.doc_starts)
            if pad is not None:
                p, t = stored_padding(chunk, pad[0], pad[1], self.path, self.footer.chunks[c])
                padded += p
                padding += t
        return Contents(starts, padded, padding)

    # -- lifetime --------------------------------------------------------------------

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            raise ValueError(f"{self.path}: shard is closed")
        return self._map

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> Shard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # The map may never have been created when __init__ failed part way.
        mapped = getattr(self, "_map", None)
        if mapped is not None:
            mapped.close()

    def __repr__(self) -> str:
        return f"Shard({self.path!r}, records={len(self)}, tokens={self.token_count})"


def read_shard(path: str | os.PathLike[str], *, vocab_size: int | None = None) -> Iterator[Record]:
    """Yield every record of one shard in file order (copies, safe to keep)."""
    with Shard(path, vocab_size=vocab_size, cache=LRUCache(1)) as shard:
        for record in shard:
            yield Record(record.tokens.copy(), record.loss_mask.copy(), record.doc_starts.copy())
