"""An independent writer of the shard format, for tests only (docs/FORMAT.md §1-2).

Written from the format document without looking at the reader, so that a round trip
tests the document's two readings against each other. It favours plain loops over speed.
A record is ``(tokens, loss_mask, doc_starts)`` of Python sequences.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from typing import Callable

import xxhash
import zstandard

MAGIC = b"\x89TKM\r\n\x1a\n"
END_MAGIC = b"TKMEND\r\n"

Record = tuple[Sequence[int], Sequence[int], Sequence[int]]


def h64(data: bytes) -> int:
    return xxhash.xxh3_64_intdigest(data)


def encode_chunk(records: Sequence[Record], width: int) -> bytes:
    """The decompressed bytes of one chunk (§1.2)."""
    out = bytearray(struct.pack("<I", len(records)))
    for tokens, _, starts in records:
        out += struct.pack("<II", len(tokens), len(starts))
    code = "<H" if width == 2 else "<I"
    for tokens, _, _ in records:
        for t in tokens:
            out += struct.pack(code, t)
    while len(out) % 4:
        out.append(0)
    for _, _, starts in records:
        for s in starts:
            out += struct.pack("<I", s)
    for tokens, mask, _ in records:
        packed = bytearray((len(tokens) + 7) // 8)
        for t, bit in enumerate(mask):
            if bit:
                packed[t // 8] |= 1 << (t % 8)
        out += packed
    return bytes(out)


def shard_bytes(
    records: Sequence[Record],
    width: int,
    chunk_records: int = 2,
    level: int = 3,
    content_size: bool = True,
    version_minor: int = 0,
    mutate_header: Callable[[bytes], bytes] | None = None,
    mutate_raw: Callable[[int, bytes], bytes] | None = None,
    mutate_frame: Callable[[int, bytes], bytes] | None = None,
    mutate_footer: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """A whole shard: header, chunks of ``chunk_records`` records, footer, trailer.

    The ``mutate_*`` hooks model a buggy writer: they change the header's first 24 bytes,
    chunk ``c``'s decompressed bytes, its compressed frame, or the footer, and every
    checksum is computed after them, so only the reader's structural checks can catch the
    damage.
    """
    header = MAGIC + struct.pack("<HHB", 1, version_minor, width) + bytes(3) + bytes(8)
    if mutate_header is not None:
        header = mutate_header(header)
    header += struct.pack("<Q", h64(header))
    body = bytearray(header)
    table = bytearray()
    compressor = zstandard.ZstdCompressor(level=level, write_content_size=content_size)
    for first in range(0, len(records), chunk_records):
        group = records[first : first + chunk_records]
        raw = encode_chunk(group, width)
        if mutate_raw is not None:
            raw = mutate_raw(first // chunk_records, raw)
        frame = compressor.compress(raw)
        if mutate_frame is not None:
            frame = mutate_frame(first // chunk_records, frame)
        tokens = sum(len(r[0]) for r in group)
        table += struct.pack("<QIIIIQQ", len(body), len(frame), len(raw), len(group), 0, tokens, h64(frame))
        body += frame
    chunk_count = len(table) // 40
    footer = struct.pack("<QQII", len(records), sum(len(r[0]) for r in records), chunk_count, 0) + table
    if mutate_footer is not None:
        footer = mutate_footer(footer)
    footer_offset = len(body)
    body += footer
    body += struct.pack("<QQQ", footer_offset, len(footer), h64(footer)) + END_MAGIC
    return bytes(body)


def padding_of(record: Record) -> int:
    """Padding tokens of a record stored under strategy ``pad`` (§1.2): a record with two
    document starts is its item then padding, from the second start to the end."""
    tokens, _, starts = record
    return len(tokens) - starts[1] if len(starts) == 2 else 0


def write_dataset(
    directory: str | os.PathLike[str],
    splits: dict[str, Sequence[Sequence[Record]]],
    vocab_size: int,
    chunk_records: int = 2,
    strategy: str = "best-fit",
    seq_len: int = 16,
    **shard_options: object,
) -> dict:
    """Write ``SPLIT-NNNNN.tkm`` files (one per record list) and ``index.json``; return the index.

    ``documents`` counts document starts, less one padding document per padded record
    when ``strategy`` is ``pad`` (§2.2); ``padding_tokens`` the padding.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    width = 2 if vocab_size <= 65536 else 4
    index_splits = {}
    for split, shard_lists in splits.items():
        shards = []
        for k, records in enumerate(shard_lists):
            name = f"{split}-{k:05d}.tkm"
            data = shard_bytes(records, width, chunk_records, **shard_options)
            with open(os.path.join(directory, name), "wb") as file:
                file.write(data)
            shards.append(
                {
                    "file": name,
                    "records": len(records),
                    "tokens": sum(len(r[0]) for r in records),
                    "bytes": len(data),
                    "checksum": f"{h64(data):016x}",
                }
            )
        every = [r for records in shard_lists for r in records]
        padding = [padding_of(r) for r in every] if strategy == "pad" else [0] * len(every)
        index_splits[split] = {
            "records": sum(s["records"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "documents": sum(len(r[2]) for r in every) - sum(1 for p in padding if p),
            "padding_tokens": sum(padding),
            "bytes": sum(s["bytes"] for s in shards),
            "shards": shards,
        }
    index = {
        "format": "tokenmill-shards",
        "format_version": "1.1",
        "tool_version": "test",
        "spec_hash": "0000000000000000",
        "name": "test",
        "tokenizer": {
            "name": "test",
            "vocab_hash": "0000000000000000",
            "vocab_size": vocab_size,
            "eos_id": vocab_size - 1,
            "pad_id": vocab_size - 1,
            "special_tokens": {},
        },
        "template": "plain",
        "seq_len": seq_len,
        "pack": {"strategy": strategy, "overflow": "split"},
        "dtype": "uint16" if width == 2 else "uint32",
        "splits": index_splits,
        "sources": {},
    }
    with open(os.path.join(directory, "index.json"), "w", encoding="utf-8") as file:
        json.dump(index, file, indent=2)
    return index


def set_reserved_header(header: bytes) -> bytes:
    """A ``mutate_header`` hook: every reserved header byte (13..23) non-zero."""
    return header[:13] + bytes(range(1, 12))


def set_reserved_footer(footer: bytes) -> bytes:
    """A ``mutate_footer`` hook: the footer's reserved field and every chunk entry's non-zero."""
    data = bytearray(footer)
    data[20:24] = b"\x01\x02\x03\x04"
    for k in range((len(data) - 24) // 40):
        at = 24 + 40 * k + 20
        data[at : at + 4] = b"\xff\x00\x00\x01"
    return bytes(data)


def set_reserved_entries(footer: bytes) -> bytes:
    """A ``mutate_footer`` hook: only the chunk entries' reserved fields non-zero."""
    return footer[:24] + set_reserved_footer(footer)[24:]
