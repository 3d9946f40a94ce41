"""`tokenmill export`, read back by each format's owner and compared with ``tokenmill.Dataset``.

Every exported token and every loss-mask bit is compared with what ``tokenmill.Dataset``
gives for the same split (docs/EXPORT.md says how a sequence or a document maps onto
each format). The readers are the owners' own:

- megatron: ``megatron.core.datasets.indexed_dataset.IndexedDataset``
  (``OUT/SPLIT`` and ``OUT/SPLIT_loss_mask``);
- datatrove: ``datatrove.utils.dataset.DatatroveFileDataset`` (fixed windows of
  ``seq_len + 1`` tokens, positions from ``.ds.index``), ``DatatroveFolderDataset`` on a
  per-split folder, and the document readers of datatrove's merger
  (``load_doc_ends``, ``get_data_reader``) for ``.ds`` / ``.ds.loss`` per document;
- mds: ``streaming.StreamingDataset(local=OUT, split=SPLIT, remote=None)``;
- hf: ``datasets.load_from_disk(OUT/SPLIT)``.

Layout choices pinned here (EXPORT.md): datatrove's ``.ds.index`` ends every stored
document (with ``--unit sequence`` each document of each sequence, a padded sequence's
padding one of them, so datatrove's positions are Tokenmill's ``position_ids``); hf's
``attention_mask`` is 0 on ``pad`` padding; ``--unit document`` leaves padding out.
Left open, either accepted: ``OUT/SPLIT/SPLIT.ds`` or ``OUT/SPLIT.ds``; an MDS
``loss_mask`` of ``ndarray:uint8`` or ``ndarray:uint32``; hf ``_split`` the split's
name or null.

Each reader is imported with ``pytest.importorskip``, so a test skips, saying which
package is missing, when the reader is not installed (they are not in
requirements.txt: torch alone is gigabytes). Pins that install together on Python 3.11
are in docs/EXPORT.md.

Needs the binary (``TOKENMILL_BIN`` or ``<repo>/.build/release/tokenmill``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import cli
import numpy as np
import pytest
import specdata

from tokenmill import Dataset

pytestmark = pytest.mark.binary

# "mds-zstd" is `--format mds --compression zstd`; plain "mds" is uncompressed (MDSWriter's default).
FORMATS = ("megatron", "datatrove", "mds", "mds-zstd", "hf")
UNITS = ("sequence", "document")

# Both splits, concat packing (documents cut across sequences), a chat template and an
# instruction template (loss masks with zeros), gpt2 (vocab 50257 < 65500: Megatron
# uint16) and cl100k_base (100277: Megatron int32, 4-byte tokens elsewhere), and pad
# (whose padding document is not a document: --unit document leaves it out).
CASES = {
    "chatml-cl100k-concat": ("chatml", "cl100k_base", "concat"),
    "alpaca-gpt2-concat": ("alpaca", "gpt2", "concat"),
    "plain-gpt2-pad": ("plain", "gpt2", "pad"),
}


@dataclass
class Unit:
    """One exported sample as Tokenmill sees it."""

    ids: np.ndarray  # int64
    mask: np.ndarray  # bool
    positions: np.ndarray  # int64
    bounds: np.ndarray  # int64: the sample's document starts, then its length (a padding document included)
    padding: int  # tokens of padding at its end (strategy pad, unit sequence)


@dataclass
class Built:
    out: Path
    index: dict

    @property
    def vocab_size(self) -> int:
        return self.index["tokenizer"]["vocab_size"]

    @property
    def splits(self) -> list[str]:
        return list(self.index["splits"])


@pytest.fixture(scope="module", params=list(CASES))
def built(request, tokenmill_bin, tmp_path_factory) -> Built:
    template, tokenizer, strategy = CASES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    spec_path = specdata.write_spec(folder, template, tokenizer, strategy)
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    spec["split"] = {"validation": 0.25, "seed": 7}
    spec_path.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out = cli.build(tokenmill_bin, spec_path, folder / "out")
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert set(index["splits"]) == {"train", "validation"}, "the spec should give both splits"
    return Built(out, index)


def expected_units(built: Built, split: str, unit: str) -> list[Unit]:
    """The samples an export of ``split`` by ``unit`` must hold, in order, from tokenmill.Dataset."""
    strategy = built.index["pack"]["strategy"]
    units: list[Unit] = []
    ds = Dataset(built.out, split)
    try:
        for example in ds:
            ids, mask, cu = example["input_ids"], example["loss_mask"], example["cu_seqlens"]
            cu = cu.astype(np.int64)
            padded = strategy == "pad" and len(cu) == 3  # the second start is padding (FORMAT.md 1.2)
            padding = int(cu[2] - cu[1]) if padded else 0
            if unit == "sequence":
                units.append(Unit(ids, mask, example["position_ids"], cu, padding))
                continue
            for k in range(len(cu) - 1 - padded):  # padding is not a document
                a, b = int(cu[k]), int(cu[k + 1])
                n = b - a
                units.append(Unit(ids[a:b], mask[a:b], np.arange(n, dtype=np.int64), np.array([0, n]), 0))
    finally:
        ds.close()
    if unit == "document":
        assert len(units) == built.index["splits"][split]["documents"]
    else:
        assert len(units) == built.index["splits"][split]["records"]
    return units


def export(tokenmill_bin: Path, built: Built, fmt: str, unit: str, out: Path, *splits: str) -> Path:
    args = ["export", built.out, "--out", out, "--unit", unit]
    args += ["--format", "mds", "--compression", "zstd"] if fmt == "mds-zstd" else ["--format", fmt]
    for split in splits:
        args += ["--split", split]
    cli.run(tokenmill_bin, *args)
    return out


# -- Megatron ------------------------------------------------------------------------


def check_megatron(out: Path, split: str, units: list[Unit], vocab_size: int) -> None:
    indexed = pytest.importorskip(
        "megatron.core.datasets.indexed_dataset", reason="megatron-core (and torch) not installed"
    )
    want = np.uint16 if vocab_size < 65500 else np.int32  # DType.optimal_dtype's rule
    assert indexed.DType.optimal_dtype(vocab_size) is want
    lengths = [len(u.ids) for u in units]

    tokens = indexed.IndexedDataset(str(out / split))
    assert tokens.index.dtype is want, f"{split}.idx dtype {tokens.index.dtype}, Megatron's rule gives {want}"
    assert len(tokens) == len(units)
    assert tokens.sequence_lengths.tolist() == lengths
    # One document per sequence: document_indices = 0, 1, ..., N.
    assert tokens.document_indices.tolist() == list(range(len(units) + 1))
    for i, u in enumerate(units):
        got = tokens[i]
        assert got.dtype == want
        np.testing.assert_array_equal(got.astype(np.int64), u.ids, err_msg=f"{split} sequence {i}")

    mask = indexed.IndexedDataset(str(out / f"{split}_loss_mask"))
    assert mask.index.dtype is np.uint8
    assert mask.sequence_lengths.tolist() == lengths
    assert mask.document_indices.tolist() == list(range(len(units) + 1))
    for i, u in enumerate(units):
        got = mask[i]
        assert set(np.unique(got).tolist()) <= {0, 1}
        np.testing.assert_array_equal(got.astype(bool), u.mask, err_msg=f"{split} loss mask {i}")
    # the data files hold nothing else
    assert (out / f"{split}.bin").stat().st_size == sum(lengths) * np.dtype(want).itemsize
    assert (out / f"{split}_loss_mask.bin").stat().st_size == sum(lengths)


# -- datatrove -----------------------------------------------------------------------


def datatrove_file(out: Path, split: str) -> Path:
    """OUT/SPLIT/SPLIT.ds (one folder a split, EXPORT.md's recommendation) or OUT/SPLIT.ds."""
    for path in (out / split / f"{split}.ds", out / f"{split}.ds"):
        if path.is_file():
            return path
    raise AssertionError(f"no {split}.ds in {out} or {out / split}")


def check_datatrove(out: Path, split: str, units: list[Unit], vocab_size: int, seq_len: int) -> None:
    merger = pytest.importorskip("datatrove.pipeline.tokens.merger", reason="datatrove not installed")
    path = datatrove_file(out, split)
    token_size = 2 if vocab_size <= 65536 else 4  # datatrove's rule (PipelineStepWithTokenizer.token_size)
    dtype = np.dtype("<u2" if token_size == 2 else "<u4")
    # .ds.index ends every stored document: with --unit sequence the documents of each
    # sequence (its padding one of them, as in Tokenmill's position_ids), with --unit
    # document each sample; so the reader's positions are Tokenmill's.
    documents = [(u.ids[a:b], u.mask[a:b]) for u in units for a, b in zip(u.bounds[:-1], u.bounds[1:])]
    lengths = [len(ids) for ids, _ in documents]
    total = sum(lengths)
    flat = np.concatenate([u.ids for u in units])
    assert path.stat().st_size == total * token_size
    assert Path(f"{path}.loss").stat().st_size == total
    assert Path(f"{path}.index").stat().st_size == 8 * len(documents)

    metadata = Path(f"{path}.metadata").read_text(encoding="utf-8").split("\n")
    assert metadata[0].rsplit("|", 1)[1] == str(token_size), f"{path}.metadata: {metadata}"
    assert metadata[1] == str(total), f"{path}.metadata: {metadata}"
    humanize = pytest.importorskip("humanize")  # datatrove's own dependency
    assert metadata[2] == humanize.metric(total, unit="T"), f"{path}.metadata: {metadata}"

    # Document by document, as datatrove's merger reads them.
    ends = merger.load_doc_ends(open(f"{path}.index", "rb"))
    assert list(ends) == np.cumsum(lengths).tolist()
    datas = list(merger.get_data_reader(open(path, "rb"), ends, nb_bytes=token_size))
    losses = list(merger.get_data_reader(open(f"{path}.loss", "rb"), ends, nb_bytes=1))
    assert len(datas) == len(losses) == len(documents)
    for i, (data, loss, (ids, mask)) in enumerate(zip(datas, losses, documents)):
        np.testing.assert_array_equal(np.frombuffer(data, dtype).astype(np.int64), ids, err_msg=f"doc {i}")
        loss = np.frombuffer(loss, np.uint8)
        assert set(np.unique(loss).tolist()) <= {0, 1}, f"{path}.loss holds bytes other than 0 and 1"
        np.testing.assert_array_equal(loss.astype(bool), mask, err_msg=f"loss of doc {i}")

    # The trainer's reader: windows of L + 1 tokens from the whole file, positions from .index.
    pytest.importorskip("torch", reason="torch not installed (datatrove's dataset needs it)")
    dataset = pytest.importorskip("datatrove.utils.dataset", reason="datatrove not installed")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    window = seq_len - 1  # L + 1 = seq_len: a full packed sequence per window under concat/pad
    reader = dataset.DatatroveFileDataset(
        str(path), seq_len=window, token_size=token_size, return_positions=True
    )
    assert len(reader) == total // (window + 1)
    for w in range(len(reader)):
        a = w * (window + 1)
        item = reader[w]
        np.testing.assert_array_equal(
            item["input_ids"].numpy(), flat[a : a + window + 1], err_msg=f"window {w}"
        )
        t = np.arange(a, a + window + 1)
        doc_start = starts[np.searchsorted(starts, t, side="right") - 1]
        want_positions = t - np.maximum(doc_start, a)
        np.testing.assert_array_equal(item["positions"].numpy(), want_positions, err_msg=f"positions {w}")
    if path.parent.name == split:
        folder = dataset.DatatroveFolderDataset(str(path.parent), seq_len=window, token_size=token_size)
        assert len(folder) == len(reader), "the split's folder should hold that split's .ds only"


# -- MosaicML streaming (MDS) --------------------------------------------------------


def check_mds(out: Path, split: str, units: list[Unit], compressed: bool) -> None:
    streaming = pytest.importorskip("streaming", reason="mosaicml-streaming not installed")
    import zstandard

    folder = out / split
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    assert index["version"] == 2
    samples = 0
    for k, shard in enumerate(index["shards"]):
        assert shard["format"] == "mds" and shard["version"] == 2
        assert shard["compression"] == ("zstd" if compressed else None)
        assert shard["column_names"] == ["input_ids", "loss_mask"]
        assert shard["column_encodings"][0] == "ndarray:uint32"
        assert shard["column_encodings"][1] in ("ndarray:uint8", "ndarray:uint32")
        assert shard["column_sizes"] == [None, None]
        assert shard["samples"] >= 1
        assert shard["raw_data"]["basename"] == f"shard.{k:05d}.mds"
        if compressed:
            assert shard["zip_data"]["basename"] == f"shard.{k:05d}.mds.zstd"
            zipped = (folder / shard["zip_data"]["basename"]).read_bytes()
            assert len(zipped) == shard["zip_data"]["bytes"]
            raw = zstandard.ZstdDecompressor().decompress(zipped, max_output_size=1 << 32)
        else:
            assert shard["zip_data"] is None
            raw = (folder / shard["raw_data"]["basename"]).read_bytes()
        assert len(raw) == shard["raw_data"]["bytes"]
        assert struct.unpack_from("<I", raw, 0)[0] == shard["samples"]
        samples += shard["samples"]
    assert samples == len(units)

    dataset = streaming.StreamingDataset(
        local=str(out), split=split, remote=None, shuffle=False, batch_size=1
    )
    assert len(dataset) == len(units)
    for i, u in enumerate(units):
        sample = dataset[i]
        assert sample["input_ids"].dtype == np.uint32
        np.testing.assert_array_equal(sample["input_ids"].astype(np.int64), u.ids, err_msg=f"sample {i}")
        assert set(np.unique(sample["loss_mask"]).tolist()) <= {0, 1}
        np.testing.assert_array_equal(sample["loss_mask"].astype(bool), u.mask, err_msg=f"mask {i}")


# -- Hugging Face datasets -----------------------------------------------------------


HF_DTYPES = {"input_ids": "int32", "labels": "int64", "attention_mask": "int8", "position_ids": "int32"}


def check_hf(out: Path, split: str, units: list[Unit]) -> None:
    datasets = pytest.importorskip("datasets", reason="datasets not installed")
    folder = out / split
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    assert state["_split"] in (split, None)  # EXPORT.md recommends the split's name
    files = [f["filename"] for f in state["_data_files"]]
    assert files, "state.json lists no data file"
    for k, name in enumerate(files):
        assert name == f"data-{k:05d}-of-{len(files):05d}.arrow"
        with open(folder / name, "rb") as f:
            assert f.read(4) == b"\xff\xff\xff\xff", f"{name} is not an Arrow IPC stream"

    dataset = datasets.load_from_disk(str(folder))
    assert dataset.split is None if state["_split"] is None else str(dataset.split) == split
    assert list(dataset.features) == list(HF_DTYPES)
    for column, dtype in HF_DTYPES.items():
        feature = dataset.features[column]
        assert type(feature).__name__ in ("List", "Sequence") and feature.feature.dtype == dtype, (
            column,
            feature,
        )
    assert len(dataset) == len(units)
    rows = dataset[:]
    for i, u in enumerate(units):
        np.testing.assert_array_equal(rows["input_ids"][i], u.ids, err_msg=f"input_ids {i}")
        np.testing.assert_array_equal(rows["labels"][i], np.where(u.mask, u.ids, -100), err_msg=f"labels {i}")
        attention = np.ones(len(u.ids), np.int64)
        attention[len(u.ids) - u.padding :] = 0  # 0 on the padding of a padded sequence
        np.testing.assert_array_equal(rows["attention_mask"][i], attention, err_msg=f"attention_mask {i}")
        np.testing.assert_array_equal(rows["position_ids"][i], u.positions, err_msg=f"position_ids {i}")


# -- the tests -----------------------------------------------------------------------


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_reads_back_with_the_owners_reader(tokenmill_bin, built, fmt, unit, tmp_path):
    out = export(tokenmill_bin, built, fmt, unit, tmp_path / "export")
    for split in built.splits:
        units = expected_units(built, split, unit)
        assert any(not u.mask.all() for u in units) or built.index["template"] == "plain"
        if fmt == "megatron":
            check_megatron(out, split, units, built.vocab_size)
        elif fmt == "datatrove":
            check_datatrove(out, split, units, built.vocab_size, built.index["seq_len"])
        elif fmt.startswith("mds"):
            check_mds(out, split, units, compressed=fmt == "mds-zstd")
        else:
            check_hf(out, split, units)


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_mds_shards_equal_mdswriters_bytes(tokenmill_bin, built, compression, tmp_path):
    """MosaicML's own MDSWriter, given the same samples, writes the same raw shards (and,
    compressed, shards that decompress to them) and the same index.json."""
    streaming = pytest.importorskip("streaming", reason="mosaicml-streaming not installed")
    import zstandard

    fmt = "mds-zstd" if compression else "mds"
    out = export(tokenmill_bin, built, fmt, "sequence", tmp_path / "export")
    for split in built.splits:
        ref = tmp_path / "mdswriter" / split
        columns = {"input_ids": "ndarray:uint32", "loss_mask": "ndarray:uint32"}
        with streaming.MDSWriter(out=str(ref), columns=columns, compression=compression) as w:
            for u in expected_units(built, split, "sequence"):
                w.write({"input_ids": u.ids.astype(np.uint32), "loss_mask": u.mask.astype(np.uint32)})
        ours = json.loads((out / split / "index.json").read_text(encoding="utf-8"))
        theirs = json.loads((ref / "index.json").read_text(encoding="utf-8"))
        assert len(ours["shards"]) == len(theirs["shards"])
        for a, b in zip(ours["shards"], theirs["shards"]):
            if compression:  # the compressed bytes depend on the zstd build; the raw ones may not
                assert a["zip_data"]["basename"] == b["zip_data"]["basename"]
                a["zip_data"]["bytes"] = b["zip_data"]["bytes"] = None
            assert a == b

            def raw(folder: Path, entry: dict) -> bytes:
                if entry["zip_data"] is None:
                    return (folder / entry["raw_data"]["basename"]).read_bytes()
                zipped = (folder / entry["zip_data"]["basename"]).read_bytes()
                return zstandard.ZstdDecompressor().decompress(zipped, max_output_size=1 << 32)

            assert raw(out / split, a) == raw(ref, b), f"{split} {a['raw_data']['basename']}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_of_named_split_only(tokenmill_bin, built, fmt, tmp_path):
    out = export(tokenmill_bin, built, fmt, "sequence", tmp_path / "export", "validation")
    names = sorted(p.name for p in out.iterdir())
    assert names and not [n for n in names if n.startswith("train")], f"--split validation wrote {names}"
    units = expected_units(built, "validation", "sequence")
    if fmt == "megatron":
        check_megatron(out, "validation", units, built.vocab_size)
    elif fmt == "datatrove":
        check_datatrove(out, "validation", units, built.vocab_size, built.index["seq_len"])
    elif fmt.startswith("mds"):
        check_mds(out, "validation", units, compressed=fmt == "mds-zstd")
    else:
        check_hf(out, "validation", units)


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--format", "parquet"], "parquet"),
        (["--format", "hf", "--unit", "tokens"], "tokens"),
        (["--format", "hf", "--split", "nosuch"], "nosuch"),
        (["--format", "mds", "--compression", "lz4"], "lz4"),
        (["--format", "megatron", "--compression", "zstd"], "--compression"),
    ],
    ids=["unknown format", "unknown unit", "unknown split", "unknown compression", "compression of an uncompressed format"],
)
def test_export_usage_errors_exit_2(tokenmill_bin, built, extra, named, tmp_path):
    result = cli.run(tokenmill_bin, "export", built.out, "--out", tmp_path / "export", *extra, check=False)
    message = result.stderr.decode(errors="replace")
    assert result.returncode == 2, message
    assert named in message, f"the message should name {named!r}: {message!r}"
