"""The fixed-size parts of a ``.tkm`` shard: header, trailer, footer (docs/FORMAT.md §1).

Each ``parse_*`` function takes the raw bytes of one region and returns a frozen value,
or raises :class:`~tokenmill.ShardError` naming the field that is wrong. They check
everything the region itself can prove (magic, version, reserved zeros, checksums,
sizes, tiling of the chunks) so that later code can index without re-checking bounds.

Order of checks: the magic comes first (so a file that is not a shard at all says so),
then the checksum, then the values. A flipped version byte therefore reports "header
checksum mismatch" (the truth) rather than "unsupported version 257", while a genuine
future major version, whose checksum is valid, reports the version.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import xxhash

from .errors import ShardError

MAGIC = b"\x89TKM\r\n\x1a\n"
END_MAGIC = b"TKMEND\r\n"
VERSION_MAJOR = 1
#: The minor version this reader implements. Reserved fields must be zero in a file of this
#: minor or an older one; a later minor may use them, and this reader then ignores them.
VERSION_MINOR = 1
HEADER_SIZE = 32
TRAILER_SIZE = 32
FOOTER_FIXED_SIZE = 24
CHUNK_ENTRY_SIZE = 40
TOKEN_WIDTHS = (2, 4)

#: One chunk-table entry (§1.3), parsed for all chunks at once with numpy.
CHUNK_ENTRY_DTYPE = np.dtype(
    [
        ("offset", "<u8"),
        ("compressed_size", "<u4"),
        ("decompressed_size", "<u4"),
        ("record_count", "<u4"),
        ("reserved", "<u4"),
        ("token_count", "<u8"),
        ("checksum", "<u8"),
    ]
)
assert CHUNK_ENTRY_DTYPE.itemsize == CHUNK_ENTRY_SIZE


def xxh3(data: bytes | memoryview) -> int:
    """XXH3_64bits, seed 0: the only hash the format uses."""
    return xxhash.xxh3_64_intdigest(data)


@dataclass(frozen=True)
class Header:
    version_major: int
    version_minor: int
    token_width: int


@dataclass(frozen=True)
class Trailer:
    footer_offset: int
    footer_size: int
    footer_checksum: int


@dataclass(frozen=True)
class ChunkEntry:
    """One row of the chunk table, plus where its records start in the shard."""

    index: int
    offset: int
    compressed_size: int
    decompressed_size: int
    record_count: int
    token_count: int
    checksum: int
    first_record: int


@dataclass(frozen=True)
class Footer:
    record_count: int
    token_count: int
    chunks: tuple[ChunkEntry, ...]
    #: ``record_starts[c]`` is the shard-wide index of chunk ``c``'s first record;
    #: the last element is ``record_count``. Used to binary-search a record's chunk.
    record_starts: np.ndarray


def parse_header(data: bytes, path: str) -> Header:
    """Validate the 32-byte header (§1.1)."""
    if len(data) != HEADER_SIZE:
        raise ShardError(path, "header", f"expected {HEADER_SIZE} bytes, got {len(data)}")
    if data[0:8] != MAGIC:
        raise ShardError(path, "header.magic", f"{data[0:8].hex()} is not a tokenmill shard magic")
    (stored,) = struct.unpack_from("<Q", data, 24)
    computed = xxh3(data[0:24])
    if stored != computed:
        raise ShardError(path, "header.header_checksum", f"stored {stored:016x}, computed {computed:016x}")
    major, minor, width = struct.unpack_from("<HHB", data, 8)
    if major != VERSION_MAJOR:
        raise ShardError(
            path, "header.version_major", f"version {major}.{minor} unsupported; this reader reads 1.x"
        )
    if width not in TOKEN_WIDTHS:
        raise ShardError(path, "header.token_width", f"{width}, expected 2 or 4")
    if reserved_zero(minor) and any(data[13:24]):
        raise ShardError(path, "header.reserved", f"bytes 13..24 must be zero (version {major}.{minor})")
    return Header(major, minor, width)


def reserved_zero(version_minor: int) -> bool:
    """Whether a file of ``version_minor`` must have zero reserved fields (§1.7)."""
    return version_minor <= VERSION_MINOR


def parse_trailer(data: bytes, file_size: int, path: str) -> Trailer:
    """Validate the 32-byte trailer (§1.4) against the file size."""
    if len(data) != TRAILER_SIZE:
        raise ShardError(path, "trailer", f"expected {TRAILER_SIZE} bytes, got {len(data)}")
    if data[24:32] != END_MAGIC:
        raise ShardError(path, "trailer.magic", f"{data[24:32].hex()}, expected {END_MAGIC.hex()}")
    footer_offset, footer_size, footer_checksum = struct.unpack_from("<QQQ", data, 0)
    if footer_offset + footer_size + TRAILER_SIZE != file_size:
        raise ShardError(
            path,
            "trailer",
            f"footer_offset {footer_offset} + footer_size {footer_size} + 32 != file size {file_size}",
        )
    if footer_offset < HEADER_SIZE:
        raise ShardError(path, "trailer.footer_offset", f"{footer_offset} lies inside the header")
    if footer_size < FOOTER_FIXED_SIZE:
        raise ShardError(path, "trailer.footer_size", f"{footer_size} < {FOOTER_FIXED_SIZE}")
    return Trailer(footer_offset, footer_size, footer_checksum)


def parse_footer(data: bytes, trailer: Trailer, path: str, version_minor: int) -> Footer:
    """Validate the footer (§1.3): checksum, size, reserved zeros, totals, chunk tiling.

    ``version_minor`` is the header's: reserved fields are checked only up to this
    reader's minor (§1.7).
    """
    check_reserved = reserved_zero(version_minor)
    computed = xxh3(data)
    if computed != trailer.footer_checksum:
        raise ShardError(
            path,
            "footer",
            f"checksum mismatch: trailer says {trailer.footer_checksum:016x}, computed {computed:016x}",
        )
    record_count, token_count, chunk_count, reserved = struct.unpack_from("<QQII", data, 0)
    if check_reserved and reserved != 0:
        raise ShardError(path, "footer.reserved", f"{reserved}, must be zero (version 1.{version_minor})")
    expected_size = FOOTER_FIXED_SIZE + CHUNK_ENTRY_SIZE * chunk_count
    if len(data) != expected_size:
        raise ShardError(
            path, "footer", f"{len(data)} bytes, but {chunk_count} chunks need exactly {expected_size}"
        )
    table = np.frombuffer(data, dtype=CHUNK_ENTRY_DTYPE, count=chunk_count, offset=FOOTER_FIXED_SIZE)

    # Python ints from here on: sums of u64 fields must not wrap silently.
    entries: list[ChunkEntry] = []
    next_offset = HEADER_SIZE
    first_record = 0
    tokens = 0
    for c, row in enumerate(table.tolist()):
        offset, csize, dsize, records, rsv, ntokens, checksum = row
        where = f"footer.chunk_table[{c}]"
        if check_reserved and rsv != 0:
            raise ShardError(path, f"{where}.reserved", f"{rsv}, must be zero (version 1.{version_minor})")
        if offset != next_offset:
            raise ShardError(
                path, f"{where}.offset", f"{offset}, expected {next_offset} (chunks must tile the file)"
            )
        if csize == 0:
            raise ShardError(path, f"{where}.compressed_size", "0: a chunk is a non-empty zstd frame")
        if records == 0:
            raise ShardError(path, f"{where}.record_count", "0: a chunk holds at least one record")
        if ntokens < records:
            raise ShardError(
                path,
                f"{where}.token_count",
                f"{ntokens} < record_count {records} (each record has >= 1 token)",
            )
        entries.append(ChunkEntry(c, offset, csize, dsize, records, ntokens, checksum, first_record))
        next_offset = offset + csize
        first_record += records
        tokens += ntokens
    if next_offset != trailer.footer_offset:
        raise ShardError(
            path,
            "footer.chunk_table",
            f"chunks end at {next_offset}, but the footer starts at {trailer.footer_offset}",
        )
    if first_record != record_count:
        raise ShardError(
            path, "footer.record_count", f"{record_count}, but the chunks hold {first_record} records"
        )
    if tokens != token_count:
        raise ShardError(path, "footer.token_count", f"{token_count}, but the chunks hold {tokens} tokens")
    starts = np.fromiter((e.first_record for e in entries), dtype=np.int64, count=len(entries))
    record_starts = np.append(starts, np.int64(record_count))
    return Footer(record_count, token_count, tuple(entries), record_starts)
