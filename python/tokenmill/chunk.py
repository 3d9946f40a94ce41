"""One chunk: a zstd frame holding whole records (docs/FORMAT.md §1.2).

Decompressed layout, for ``R`` records with token counts ``n`` and document counts
``d``, token width ``W``::

    u32 R | R x (u32 n[r], u32 d[r]) | tokens: W*sum(n) | zero pad to 4
          | u32 doc starts: 4*sum(d) | mask bits: sum(ceil(n/8))

For example two records of 3 and 2 u16 tokens, one document each: ``R=2`` (4 bytes),
table (16), tokens (10), pad (2), doc starts ``0, 0`` (8), masks (1 + 1) = 42 bytes.

:func:`decode_chunk` checks the whole layout once, with vectorized numpy, so that slicing
any record afterwards needs no checks. The checksum of the compressed bytes is checked
before zstd sees them: a damaged frame must never reach the decompressor, whose errors
(or, worse, successes on garbage) would not name the chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import zstandard

from .errors import ShardError
from .format import ChunkEntry, xxh3


class Record(NamedTuple):
    """One training sequence as stored: views into a decompressed chunk (read-only).

    ``tokens`` is ``uint16`` or ``uint32`` (the shard's token width), ``loss_mask`` is
    ``bool``, ``doc_starts`` is ``uint32`` (first element 0, strictly increasing).
    """

    tokens: np.ndarray
    loss_mask: np.ndarray
    doc_starts: np.ndarray


@dataclass(frozen=True)
class Chunk:
    """A validated, decompressed chunk; ``record(j)`` slices its ``j``-th record."""

    tokens: np.ndarray
    doc_starts: np.ndarray
    masks: np.ndarray
    token_offsets: np.ndarray
    doc_offsets: np.ndarray
    mask_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.token_offsets) - 1

    def record(self, j: int) -> Record:
        t0, t1 = int(self.token_offsets[j]), int(self.token_offsets[j + 1])
        d0, d1 = int(self.doc_offsets[j]), int(self.doc_offsets[j + 1])
        m0, m1 = int(self.mask_offsets[j]), int(self.mask_offsets[j + 1])
        mask = np.unpackbits(self.masks[m0:m1], count=t1 - t0, bitorder="little").view(bool)
        return Record(self.tokens[t0:t1], mask, self.doc_starts[d0:d1])


def decompress_frame(frame: bytes, entry: ChunkEntry, path: str) -> bytes:
    """Check the frame's xxh3-64, then decompress exactly one frame of the stated size."""
    where = f"chunk {entry.index} (offset {entry.offset})"
    computed = xxh3(frame)
    if computed != entry.checksum:
        raise ShardError(
            path, where, f"checksum mismatch: footer says {entry.checksum:016x}, computed {computed:016x}"
        )
    try:
        # The frame header must state the content size (§1.2), and it must be the footer's:
        # checked before anything is allocated for it.
        stated = zstandard.frame_content_size(frame)
        if stated == -1:
            raise ShardError(
                path,
                where,
                f"zstd frame has no content size (Frame_Content_Size), footer says {entry.decompressed_size}",
            )
        if stated != entry.decompressed_size:
            raise ShardError(
                path, where, f"zstd frame says {stated} bytes, footer says {entry.decompressed_size}"
            )
        # decompressobj reports trailing bytes and truncation, which
        # ZstdDecompressor.decompress does not.
        dobj = zstandard.ZstdDecompressor().decompressobj()
        data = dobj.decompress(frame)
    except zstandard.ZstdError as error:
        raise ShardError(path, where, f"zstd: {error}") from None
    if not dobj.eof:
        raise ShardError(path, where, "zstd frame is incomplete")
    if dobj.unused_data:
        raise ShardError(path, where, f"{len(dobj.unused_data)} bytes follow the zstd frame")
    if len(data) != entry.decompressed_size:
        raise ShardError(
            path, where, f"decompressed to {len(data)} bytes, footer says {entry.decompressed_size}"
        )
    return data


def decode_chunk(
    data: bytes, entry: ChunkEntry, token_width: int, vocab_size: int | None, path: str
) -> Chunk:
    """Validate a decompressed chunk against §1.2 and the footer entry; return its views."""
    where = f"chunk {entry.index} (offset {entry.offset})"

    def fail(problem: str) -> ShardError:
        return ShardError(path, where, problem)

    size = len(data)
    if size < 4:
        raise fail(f"decompressed size {size} < 4")
    count = int.from_bytes(data[0:4], "little")
    if count != entry.record_count:
        raise fail(f"record_count {count}, footer says {entry.record_count}")
    table_end = 4 + 8 * count
    if table_end > size:
        raise fail(f"record table of {count} records overruns {size} bytes")
    table = np.frombuffer(data, dtype="<u4", count=2 * count, offset=4).reshape(count, 2)
    n = table[:, 0].astype(np.int64)
    d = table[:, 1].astype(np.int64)
    if (n == 0).any():
        raise fail(f"record {int(np.argmin(n))} has 0 tokens")
    if (d == 0).any():
        raise fail(f"record {int(np.argmin(d))} has 0 document starts")
    total_tokens = int(n.sum())
    total_docs = int(d.sum())
    if total_tokens != entry.token_count:
        raise fail(f"records hold {total_tokens} tokens, footer says {entry.token_count}")

    tokens_end = table_end + token_width * total_tokens
    docs_start = (tokens_end + 3) // 4 * 4
    docs_end = docs_start + 4 * total_docs
    mask_sizes = (n + 7) // 8
    expected = docs_end + int(mask_sizes.sum())
    if expected != size:
        raise fail(f"layout needs {expected} bytes, decompressed size is {size}")
    if any(data[tokens_end:docs_start]):
        raise fail("non-zero padding after the tokens")

    dtype = "<u2" if token_width == 2 else "<u4"
    tokens = np.frombuffer(data, dtype=dtype, count=total_tokens, offset=table_end)
    if vocab_size is not None and total_tokens:
        top = int(tokens.max())
        if top >= vocab_size:
            raise fail(f"token id {top} >= vocab_size {vocab_size}")

    starts = np.frombuffer(data, dtype="<u4", count=total_docs, offset=docs_start)
    doc_offsets = np.concatenate(([0], np.cumsum(d)))
    firsts = doc_offsets[:-1]
    if starts[firsts].any():
        r = int(np.flatnonzero(starts[firsts])[0])
        raise fail(f"record {r}: first document start is {int(starts[firsts[r]])}, must be 0")
    steps = np.diff(starts.astype(np.int64))
    within = np.ones(len(steps), dtype=bool)
    within[firsts[1:] - 1] = False  # the step from one record's last start to the next's first
    if (steps[within] <= 0).any():
        k = int(np.flatnonzero(within & (steps <= 0))[0]) + 1
        r = int(np.searchsorted(doc_offsets, k, side="right")) - 1
        raise fail(f"record {r}: document starts are not strictly increasing")
    lasts = starts[doc_offsets[1:] - 1].astype(np.int64)
    if (lasts >= n).any():
        r = int(np.flatnonzero(lasts >= n)[0])
        raise fail(f"record {r}: document start {int(lasts[r])} >= token count {int(n[r])}")

    masks = np.frombuffer(data, dtype=np.uint8, offset=docs_end)
    mask_offsets = np.concatenate(([0], np.cumsum(mask_sizes)))
    used = n % 8
    partial = used != 0
    last_bytes = masks[mask_offsets[1:][partial] - 1].astype(np.int64)
    if (last_bytes >> used[partial]).any():
        r = int(np.flatnonzero(partial)[np.flatnonzero(last_bytes >> used[partial])[0]])
        raise fail(f"record {r}: unused high bits of the last loss-mask byte are not zero")

    token_offsets = np.concatenate(([0], np.cumsum(n)))
    return Chunk(tokens, starts, masks, token_offsets, doc_offsets, mask_offsets)


def stored_padding(chunk: Chunk, seq_len: int, pad_id: int, path: str, entry: ChunkEntry) -> tuple[int, int]:
    """(padded records, padding tokens) of a chunk stored under strategy ``pad`` (§1.2).

    Every record holds exactly ``seq_len`` tokens and 1 document, or 2 of which the second
    is padding: ``pad_id`` repeated to the end with loss 0. A record that breaks the rule
    raises :class:`ShardError`.
    """
    where = f"chunk {entry.index} (offset {entry.offset})"
    n = np.diff(chunk.token_offsets)
    d = np.diff(chunk.doc_offsets)
    wrong = np.flatnonzero(n != seq_len)
    if len(wrong):
        r = int(wrong[0])
        raise ShardError(
            path, where, f"record {r}: {int(n[r])} tokens, but under pack.strategy pad every sequence holds seq_len ({seq_len})"
        )
    wrong = np.flatnonzero(d > 2)
    if len(wrong):
        r = int(wrong[0])
        raise ShardError(
            path, where, f"record {r}: {int(d[r])} documents, but under pack.strategy pad a sequence holds 1, or 2 with padding"
        )
    padding = 0
    padded = np.flatnonzero(d == 2)
    for r in padded.tolist():
        start = int(chunk.doc_starts[int(chunk.doc_offsets[r]) + 1])
        tokens, mask, _ = chunk.record(r)
        if (tokens[start:] != pad_id).any() or mask[start:].any():
            raise ShardError(
                path, where, f"record {r}: the padding document (from {start}) is not pad_id {pad_id} with loss 0"
            )
        padding += seq_len - start
    return len(padded), padding
