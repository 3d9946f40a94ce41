"""The reader against an independent writer (tests/shardwriter.py): no Swift binary needed."""

from __future__ import annotations

import json
import os
import pickle
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import shardwriter

from tokenmill import Dataset, Shard, ShardError, read_shard


def make_records(seed: int, count: int, vocab_size: int, max_len: int = 23) -> list:
    """Random records covering 1-token records, many documents, all mask patterns."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        n = rng.randint(1, max_len)
        tokens = [rng.randrange(vocab_size) for _ in range(n)]
        tokens[0] = vocab_size - 1 if rng.random() < 0.3 else tokens[0]  # the top id is valid
        mask = [rng.randint(0, 1) for _ in range(n)]
        starts = sorted({0, *rng.sample(range(n), rng.randint(0, min(n, 4)))})
        records.append((tokens, mask, starts))
    return records


def expected_example(record) -> dict:
    tokens, mask, starts = record
    positions, cu = [], list(starts) + [len(tokens)]
    for a, b in zip(cu, cu[1:]):
        positions.extend(range(b - a))
    return {
        "input_ids": np.array(tokens, dtype=np.int64),
        "loss_mask": np.array(mask, dtype=bool),
        "position_ids": np.array(positions, dtype=np.int64),
        "cu_seqlens": np.array(cu, dtype=np.int32),
    }


def assert_example(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def read_everything(directory: Path, split: str = "train") -> None:
    with Dataset(directory, split) as ds:
        for i in range(len(ds)):
            ds[i]


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("vocab_size", [1, 300, 65536, 65537, 200019])
def test_round_trip_returns_what_the_writer_wrote(tmp_path, vocab_size):
    shards = [make_records(1, 7, vocab_size), make_records(2, 1, vocab_size), make_records(3, 12, vocab_size)]
    shardwriter.write_dataset(
        tmp_path, {"train": shards, "validation": [make_records(4, 3, vocab_size)]}, vocab_size
    )
    for split, lists in (("train", shards), ("validation", None)):
        with Dataset(tmp_path, split) as ds:
            flat = [r for records in (lists or [make_records(4, 3, vocab_size)]) for r in records]
            assert len(ds) == len(flat)
            for i, record in enumerate(flat):
                assert_example(ds[i], expected_example(record))
            ds.verify()


def test_negative_indexes_count_from_the_end_and_out_of_range_raises(tmp_path):
    records = make_records(5, 9, 1000)
    shardwriter.write_dataset(tmp_path, {"train": [records[:4], records[4:]]}, 1000)
    ds = Dataset(tmp_path)
    for i in range(1, 10):
        assert_example(ds[-i], expected_example(records[-i]))
    for bad in (9, 10, -10, 1 << 40):
        with pytest.raises(IndexError):
            ds[bad]
    assert_example(ds[np.int64(3)], expected_example(records[3]))
    with pytest.raises(TypeError):
        ds[1.0]


def test_chunk_cache_of_any_size_gives_the_same_answers(tmp_path):
    records = make_records(6, 30, 5000)
    shardwriter.write_dataset(tmp_path, {"train": [records]}, 5000, chunk_records=3)
    order = list(range(30)) * 2
    random.Random(0).shuffle(order)
    for capacity in (0, 1, 2, 100):
        ds = Dataset(tmp_path, cache_chunks=capacity)
        for i in order:
            assert_example(ds[i], expected_example(records[i]))
        assert len(ds._cache) <= capacity


def test_newer_minor_versions_are_read(tmp_path):
    records = make_records(7, 5, 70000)
    shardwriter.write_dataset(tmp_path, {"train": [records]}, 70000, version_minor=3)
    ds = Dataset(tmp_path)
    ds.verify()
    for i, record in enumerate(records):
        assert_example(ds[i], expected_example(record))


# FORMAT.md 1.7: reserved fields must be zero in a file whose version_minor is at most the
# reader's (1); a later minor may use them, and the reader ignores them.
RESERVED_PARTS = {
    "header": {"mutate_header": shardwriter.set_reserved_header},
    "footer": {"mutate_footer": lambda f: f[:20] + b"\x01\x00\x00\x00" + f[24:]},
    "entries": {"mutate_footer": shardwriter.set_reserved_entries},
}


def test_reserved_fields_of_a_later_minor_are_ignored(tmp_path):
    records = make_records(21, 7, 300)  # 4 chunks of 2 records
    every = {"mutate_header": shardwriter.set_reserved_header, "mutate_footer": shardwriter.set_reserved_footer}
    shardwriter.write_dataset(tmp_path, {"train": [records]}, 300, version_minor=9, **every)
    with Dataset(tmp_path) as ds:
        assert ds.shards[0].header.version_minor == 9
        ds.verify()
        for i, record in enumerate(records):
            assert_example(ds[i], expected_example(record))


@pytest.mark.parametrize("minor", [0, 1])
@pytest.mark.parametrize("part", sorted(RESERVED_PARTS))
def test_reserved_fields_up_to_the_readers_minor_must_be_zero(tmp_path, minor, part):
    records = make_records(21, 7, 300)
    shardwriter.write_dataset(tmp_path, {"train": [records]}, 300, version_minor=minor, **RESERVED_PARTS[part])
    with pytest.raises(ShardError, match=f"reserved.*version 1.{minor}"):
        Dataset(tmp_path)


def test_a_frame_without_content_size_is_damage(tmp_path):
    # FORMAT.md 1.2: a frame must carry Frame_Content_Size (tokenmill verify rejects one
    # without). Opening reads no frame; reading a record, or verify(), does.
    records = make_records(7, 5, 70000)
    shardwriter.write_dataset(tmp_path, {"train": [records]}, 70000, content_size=False)
    ds = Dataset(tmp_path)
    with pytest.raises(ShardError, match=r"train-00000.tkm: chunk 0 \(offset 32\): zstd frame has no content size"):
        ds[0]
    with pytest.raises(ShardError, match="no content size"):
        ds.verify()


def test_empty_split_and_shard_without_chunks_have_no_sequences(tmp_path):
    shardwriter.write_dataset(tmp_path, {"train": [[]], "validation": []}, 100)
    for split in ("train", "validation"):
        ds = Dataset(tmp_path, split)
        assert len(ds) == 0
        ds.verify()
        with pytest.raises(IndexError):
            ds[0]


def test_read_shard_and_shard_give_stored_records(tmp_path):
    records = make_records(8, 6, 300)
    shardwriter.write_dataset(tmp_path, {"train": [records]}, 300)
    path = tmp_path / "train-00000.tkm"
    got = list(read_shard(path, vocab_size=300))
    assert len(got) == 6
    for record, (tokens, mask, starts) in zip(got, records):
        assert record.tokens.dtype == np.uint16
        assert record.tokens.tolist() == tokens
        assert record.loss_mask.tolist() == [bool(b) for b in mask]
        assert record.doc_starts.tolist() == starts
    with Shard(path) as shard:
        assert len(shard) == 6 and shard.token_count == sum(len(r[0]) for r in records)
        assert shard[5].tokens.tolist() == records[5][0]


def test_dataset_pickles_by_name_for_worker_processes(tmp_path):
    records = make_records(9, 4, 300)
    shardwriter.write_dataset(tmp_path, {"train": [records]}, 300)
    ds = pickle.loads(pickle.dumps(Dataset(tmp_path)))
    assert_example(ds[2], expected_example(records[2]))


def test_unknown_split_and_missing_index_are_not_shard_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.json"):
        Dataset(tmp_path)
    shardwriter.write_dataset(tmp_path, {"train": [make_records(1, 2, 300)]}, 300)
    with pytest.raises(ValueError, match="no split 'validation'") as info:
        Dataset(tmp_path, "validation")
    assert not isinstance(info.value, ShardError)


# -- every byte is guarded ---------------------------------------------------------------------


def small_dataset(directory: Path, vocab_size: int) -> bytes:
    """Two shards; the first has 3 chunks (records of 1-9 tokens). Returns shard 0's bytes."""
    records = make_records(11, 5, vocab_size, max_len=9)
    shardwriter.write_dataset(directory, {"train": [records, make_records(12, 2, vocab_size)]}, vocab_size)
    return (directory / "train-00000.tkm").read_bytes()


def detected(directory: Path, verify: bool) -> str | None:
    """The ShardError message if reading (and verifying) ``directory`` finds damage."""
    try:
        with Dataset(directory) as ds:
            if verify:
                ds.verify()
            else:
                for i in range(len(ds)):
                    ds[i]
    except ShardError as error:
        return str(error)
    return None


@pytest.mark.parametrize("vocab_size", [300, 100277])
@pytest.mark.parametrize("xor", [0x01, 0x80, 0xFF])
def test_flipping_any_byte_of_a_shard_raises_shard_error(tmp_path, vocab_size, xor):
    original = small_dataset(tmp_path, vocab_size)
    path = tmp_path / "train-00000.tkm"
    assert detected(tmp_path, verify=True) is None
    for offset in range(len(original)):
        damaged = bytearray(original)
        damaged[offset] ^= xor
        path.write_bytes(damaged)
        # Reading alone must notice (per-region checks), and so must verify().
        message = detected(tmp_path, verify=False)
        assert message is not None, f"flip {xor:#04x} at offset {offset} of {len(original)} went unnoticed"
        assert "train-00000.tkm" in message
        assert detected(tmp_path, verify=True) is not None


def test_truncated_or_extended_shards_raise_shard_error(tmp_path):
    original = small_dataset(tmp_path, 300)
    path = tmp_path / "train-00000.tkm"
    index_path = tmp_path / "index.json"
    index = json.loads(index_path.read_text())
    for size in list(range(len(original))) + [len(original) + 1, len(original) + 64]:
        damaged = original[:size] + bytes(max(0, size - len(original)))
        path.write_bytes(damaged)
        assert detected(tmp_path, verify=False) is not None, f"truncation to {size}"
        # Also when index.json agrees on the size: the file's own layout must catch it.
        patched = json.loads(json.dumps(index))
        entry = patched["splits"]["train"]["shards"][0]
        delta = size - entry["bytes"]
        entry["bytes"] = size
        patched["splits"]["train"]["bytes"] += delta
        index_path.write_text(json.dumps(patched))
        assert detected(tmp_path, verify=False) is not None, f"truncation to {size}, index agreeing"
        index_path.write_text(json.dumps(index))


# -- index.json disagreeing with the shards ----------------------------------------------------


def patch_index(directory: Path, change) -> None:
    path = directory / "index.json"
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))


def shard0(index: dict) -> dict:
    return index["splits"]["train"]["shards"][0]


@pytest.mark.parametrize(
    "name, change, match",
    [
        (
            "vocab too small",
            lambda ix: ix["tokenizer"].update(vocab_size=299, eos_id=0, pad_id=0),
            "token id 299 >= vocab_size 299",
        ),
        ("dtype", lambda ix: ix.update(dtype="uint32"), "dtype"),
        ("vocab needs u32", lambda ix: ix["tokenizer"].update(vocab_size=70000), "dtype"),
        ("records", lambda ix: shard0(ix).update(records=4), "sum to|records"),
        (
            "tokens",
            lambda ix: (shard0(ix).update(tokens=1), ix["splits"]["train"].update(tokens=0)),
            "tokens",
        ),
        ("split total", lambda ix: ix["splits"]["train"].update(records=1), "sum to"),
        ("bytes", lambda ix: (shard0(ix).update(bytes=5), ix["splits"]["train"].update(bytes=0)), "bytes"),
        ("split bytes", lambda ix: ix["splits"]["train"].update(bytes=1), "splits.train.bytes: 1, but its shards sum to"),
        (
            "documents",
            lambda ix: ix["splits"]["train"].update(documents=ix["splits"]["train"]["documents"] + 1),
            "splits.train.documents: .* but its shards hold",
        ),
        ("padding", lambda ix: ix["splits"]["train"].update(padding_tokens=1), "splits.train.padding_tokens: 1, but"),
        ("no padding key", lambda ix: ix["splits"]["train"].pop("padding_tokens"), "missing key 'padding_tokens'"),
        ("checksum", lambda ix: shard0(ix).update(checksum="0123456789abcdef"), "checksum mismatch"),
        ("checksum case", lambda ix: shard0(ix).update(checksum=shard0(ix)["checksum"].upper()), "hex"),
        ("escape", lambda ix: shard0(ix).update(file="../train-00000.tkm"), "not a shard file name"),
        ("missing file", lambda ix: shard0(ix).update(file="train-00009.tkm"), "missing"),
        ("version", lambda ix: ix.update(format_version="2.0"), "unsupported"),
        ("format", lambda ix: ix.update(format="other"), "tokenmill-shards"),
        ("count type", lambda ix: shard0(ix).update(records=True), "true is not an integer"),
        ("no splits", lambda ix: ix.pop("splits"), "splits"),
    ],
)
def test_index_json_disagreeing_with_shards_raises_shard_error(tmp_path, name, change, match):
    records = make_records(13, 5, 300)
    records[0][0][0] = 299
    shardwriter.write_dataset(tmp_path, {"train": [records]}, 300)
    patch_index(tmp_path, change)
    with pytest.raises(ShardError, match=match):
        with Dataset(tmp_path) as ds:
            ds.verify()


def test_index_json_that_is_not_json_raises_shard_error(tmp_path):
    shardwriter.write_dataset(tmp_path, {"train": [make_records(1, 2, 300)]}, 300)
    for garbage in (b"", b"{", b"\xff\xfe", b"[]", b'{"format": "tokenmill-shards"}'):
        (tmp_path / "index.json").write_bytes(garbage)
        with pytest.raises(ShardError, match="index.json"):
            Dataset(tmp_path)


# -- a buggy writer: checksums valid, structure wrong ---------------------------------------------


def set_u32(raw: bytes, offset: int, value: int) -> bytes:
    return raw[:offset] + struct.pack("<I", value) + raw[offset + 4 :]


def layout(raw: bytes, width: int = 2):
    """(R, n list, d list, token start, doc-start start, mask start) of a decompressed chunk."""
    count = struct.unpack_from("<I", raw)[0]
    table = [struct.unpack_from("<II", raw, 4 + 8 * r) for r in range(count)]
    tokens_at = 4 + 8 * count
    docs_at = (tokens_at + width * sum(n for n, _ in table) + 3) // 4 * 4
    masks_at = docs_at + 4 * sum(d for _, d in table)
    return count, table, tokens_at, docs_at, masks_at


# Records chosen so every rule has something to break: odd token total (padding exists),
# token counts not multiples of 8 (unused mask bits exist), two documents in record 1.
# Record 0 is the first u32 pair of the table (offset 4), record 1 the second (offset 12).
BUGGY_RECORDS = [([1, 2, 3], [1, 0, 1], [0]), ([4, 5, 6, 7], [0, 0, 1, 1], [0, 2])]


@pytest.mark.parametrize(
    "name, hooks, match",
    [
        ("record count", {"mutate_raw": lambda c, r: set_u32(r, 0, 1)}, "record_count 1"),
        ("zero tokens", {"mutate_raw": lambda c, r: set_u32(r, 4, 0)}, "0 tokens"),
        ("zero docs", {"mutate_raw": lambda c, r: set_u32(r, 8, 0)}, "0 document starts"),
        ("token count", {"mutate_raw": lambda c, r: set_u32(r, 4, 4)}, "tokens, footer says"),
        (
            "padding",
            {"mutate_raw": lambda c, r: r[: layout(r)[3] - 1] + b"\x01" + r[layout(r)[3] :]},
            "padding",
        ),
        ("first start", {"mutate_raw": lambda c, r: set_u32(r, layout(r)[3], 1)}, "first document start"),
        ("order", {"mutate_raw": lambda c, r: set_u32(r, layout(r)[3] + 8, 0)}, "strictly increasing"),
        ("bound", {"mutate_raw": lambda c, r: set_u32(r, layout(r)[3] + 8, 4)}, ">= token count"),
        ("mask bits", {"mutate_raw": lambda c, r: r[:-1] + bytes([r[-1] | 0x80])}, "unused high bits"),
        ("extra byte", {"mutate_raw": lambda c, r: r + b"\x00"}, "layout needs"),
        ("short", {"mutate_raw": lambda c, r: r[:-1]}, "layout needs"),
        ("huge count", {"mutate_raw": lambda c, r: set_u32(r, 0, 0xFFFFFFFF)}, "record_count"),
        ("tiny", {"mutate_raw": lambda c, r: b"\x02\x00"}, "decompressed size 2"),
        ("two frames", {"mutate_frame": lambda c, f: f + f}, "follow the zstd frame"),
        ("cut frame", {"mutate_frame": lambda c, f: f[:-2]}, "zstd"),
        ("not zstd", {"mutate_frame": lambda c, f: b"not a zstd frame"}, "zstd"),
        ("footer reserved", {"mutate_footer": lambda f: f[:20] + b"\x01" + f[21:]}, "footer.reserved"),
        ("entry reserved", {"mutate_footer": lambda f: f[:44] + b"\x01" + f[45:]}, "reserved"),
        (
            "entry size",
            {"mutate_footer": lambda f: f[:36] + struct.pack("<I", 99) + f[40:]},
            "footer says 99",
        ),
        ("frame without size", {"content_size": False}, "no content size"),
        ("footer total", {"mutate_footer": lambda f: struct.pack("<Q", 3) + f[8:]}, "footer.record_count"),
        (
            "footer tokens",
            {"mutate_footer": lambda f: f[:8] + struct.pack("<Q", 3) + f[16:]},
            "footer.token_count",
        ),
        ("chunk count", {"mutate_footer": lambda f: f[:16] + struct.pack("<I", 2) + f[20:]}, "need exactly"),
        ("offset", {"mutate_footer": lambda f: f[:24] + struct.pack("<Q", 33) + f[32:]}, "tile"),
    ],
)
def test_structural_damage_behind_valid_checksums_raises_shard_error(tmp_path, name, hooks, match):
    shardwriter.write_dataset(tmp_path, {"train": [BUGGY_RECORDS]}, 300, **hooks)
    with pytest.raises(ShardError, match=match):
        with Dataset(tmp_path) as ds:
            ds.verify()


def test_buggy_records_are_valid_without_damage(tmp_path):
    shardwriter.write_dataset(tmp_path, {"train": [BUGGY_RECORDS]}, 300)
    ds = Dataset(tmp_path)
    ds.verify()
    assert ds[1]["position_ids"].tolist() == [0, 1, 0, 1]
    assert ds[1]["cu_seqlens"].tolist() == [0, 2, 4]
    assert ds[0]["loss_mask"].tolist() == [True, False, True]


def test_header_fields_are_checked_even_behind_a_valid_checksum(tmp_path):
    records = make_records(1, 2, 300)
    for offset, value, match in (
        (8, 2, "version 2.0 unsupported"),
        (12, 3, "token_width"),
        (13, 1, "reserved"),
        (23, 1, "reserved"),
    ):
        shardwriter.write_dataset(tmp_path, {"train": [records]}, 300)
        path = tmp_path / "train-00000.tkm"
        data = bytearray(path.read_bytes())
        data[offset] = value
        data[24:32] = struct.pack("<Q", shardwriter.h64(bytes(data[:24])))
        path.write_bytes(data)
        with pytest.raises(ShardError, match=match):
            Dataset(tmp_path)


def test_files_are_named_in_errors(tmp_path):
    small_dataset(tmp_path, 300)
    path = tmp_path / "train-00001.tkm"
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(data)
    with pytest.raises(ShardError) as info:
        read_everything(tmp_path)
    assert str(info.value).startswith(os.fspath(path) + ": chunk 0 (offset 32): checksum mismatch")
