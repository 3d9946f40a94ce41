"""``tokenmill verify`` and the Python reader agree (docs/FORMAT.md 2.5).

Each dataset here is written by the independent test writer (tests/shardwriter.py) or by
the binary, then changed in one way; both readers must accept it, or both reject it (exit
65 naming the file and the part; :class:`ShardError` from ``Dataset.verify``). The
expected counts are worked out by hand from the format document.

Needs the binary (``TOKENMILL_BIN`` or ``<repo>/.build/release/tokenmill``); skipped without it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cli
import pytest
import shardwriter
import specdata

from tokenmill import Dataset, ShardError

pytestmark = pytest.mark.binary

VOCAB = 300
PAD = VOCAB - 1  # shardwriter's eos_id and pad_id
SEQ_LEN = 4
# Under pad: one full sequence, two padded ones (2 and 3 padding tokens), in two shards.
# 5 document starts, of which 2 are padding: 3 documents, 5 padding tokens.
PADDED = [
    [([1, 2, 3, 4], [1, 1, 1, 1], [0]), ([5, 6, PAD, PAD], [0, 1, 0, 0], [0, 2])],
    [([7, PAD, PAD, PAD], [1, 0, 0, 0], [0, 1])],
]


def verdicts(binary: Path, directory: Path) -> tuple[str | None, str | None]:
    """(verify's complaint or None, the Python reader's complaint or None)."""
    result = cli.run(binary, "verify", directory, check=False)
    said = (result.stderr + result.stdout).decode(errors="replace")
    if result.returncode == 0:
        swift = None
    else:
        assert result.returncode == 65, f"verify exited {result.returncode}: {said}"
        swift = said
    try:
        names = json.loads((directory / "index.json").read_text())["splits"]
    except (ValueError, KeyError, TypeError):
        names = ["train"]
    try:
        for name in names:
            with Dataset(directory, name) as ds:
                ds.verify()
        python = None
    except ShardError as error:
        python = str(error)
    return swift, python


def assert_both_reject(binary: Path, directory: Path, *mentions: str) -> None:
    swift, python = verdicts(binary, directory)
    assert swift is not None, "tokenmill verify accepted it"
    assert python is not None, f"the Python reader accepted what verify rejects: {swift}"
    for word in mentions:
        assert word in swift, f"verify does not mention {word!r}: {swift}"
        assert word in python, f"the Python reader does not mention {word!r}: {python}"


def assert_both_accept(binary: Path, directory: Path) -> None:
    assert verdicts(binary, directory) == (None, None)


def patch(directory: Path, change) -> Path:
    path = directory / "index.json"
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))
    return directory


def train(index: dict) -> dict:
    return index["splits"]["train"]


@pytest.fixture
def padded(tmp_path) -> Path:
    index = shardwriter.write_dataset(tmp_path / "d", {"train": PADDED}, VOCAB, strategy="pad", seq_len=SEQ_LEN)
    assert (train(index)["documents"], train(index)["padding_tokens"]) == (3, 5)
    return tmp_path / "d"


def test_an_intact_padded_dataset_passes_both(tokenmill_bin, padded):
    assert_both_accept(tokenmill_bin, padded)
    said = cli.run(tokenmill_bin, "verify", padded).stdout.decode()
    assert "3 sequences, 3 documents, 12 tokens (5 of them padding)" in said, said


@pytest.mark.parametrize(
    "name, change, mentions",
    [
        ("documents + 1", lambda ix: train(ix).update(documents=4), ("index.json", "splits.train.documents")),
        ("documents - 1", lambda ix: train(ix).update(documents=2), ("index.json", "splits.train.documents")),
        # The 1.0 reading (padding documents counted) is wrong in a 1.1 index.
        ("padding counted", lambda ix: train(ix).update(documents=5), ("index.json", "splits.train.documents")),
        ("padding_tokens", lambda ix: train(ix).update(padding_tokens=4), ("index.json", "splits.train.padding_tokens")),
        ("no padding_tokens", lambda ix: train(ix).pop("padding_tokens"), ("index.json", "splits.train", "padding_tokens")),
        ("split bytes", lambda ix: train(ix).update(bytes=train(ix)["bytes"] + 1), ("index.json", "splits.train.bytes")),
        ("dtype", lambda ix: ix.update(dtype="uint32"), ("index.json", "dtype")),
        ("vocab needs u32", lambda ix: ix["tokenizer"].update(vocab_size=70000), ("index.json", "dtype")),
        ("eos beyond vocab", lambda ix: ix["tokenizer"].update(eos_id=VOCAB), ("index.json", "eos_id")),
        ("not pad", lambda ix: ix["pack"].update(strategy="none"), ("index.json", "splits.train.documents")),
        ("no train", lambda ix: ix["splits"].update(valid=ix["splits"].pop("train")), ("index.json", "train")),
        ("seq_len", lambda ix: ix.update(seq_len=5), ("train-00000.tkm", "seq_len")),
        ("version 2", lambda ix: ix.update(format_version="2.0"), ("index.json", "format_version")),
        ("version text", lambda ix: ix.update(format_version="1.1a"), ("index.json", "format_version")),
        ("spec hash", lambda ix: ix.update(spec_hash="0"), ("index.json", "spec_hash")),
        ("sources", lambda ix: ix.update(sources=[]), ("index.json", "sources")),
        ("float count", lambda ix: train(ix).update(records=3.0), ("index.json", "splits.train.records")),
    ],
)
def test_a_tampered_index_fails_both(tokenmill_bin, padded, name, change, mentions):
    assert_both_reject(tokenmill_bin, patch(padded, change), *mentions)


@pytest.mark.parametrize(
    "name, change",
    [
        # A 1.0 index counted every document start and had no padding_tokens.
        ("1.0", lambda ix: (ix.update(format_version="1.0"), train(ix).update(documents=5), train(ix).pop("padding_tokens"))),
        # A later minor is read by the rules of 1.1; its new keys are ignored.
        ("1.9", lambda ix: (ix.update(format_version="1.9", later={"x": 1}), train(ix).update(extra=1))),
    ],
)
def test_other_minor_versions_pass_both(tokenmill_bin, padded, name, change):
    assert_both_accept(tokenmill_bin, patch(padded, change))


def test_a_10_index_with_real_documents_fails_both(tokenmill_bin, padded):
    patch(padded, lambda ix: (ix.update(format_version="1.0"), train(ix).pop("padding_tokens")))
    assert_both_reject(tokenmill_bin, padded, "index.json", "splits.train.documents")


def test_duplicate_keys_fail_both(tokenmill_bin, padded):
    path = padded / "index.json"
    text = path.read_text()
    path.write_text(text.replace('"dtype": "uint16"', '"dtype": "uint16", "dtype": "uint32"', 1))
    assert_both_reject(tokenmill_bin, padded, "index.json", "dtype")


def test_padding_that_breaks_the_rule_fails_both(tokenmill_bin, tmp_path):
    trained = [[PADDED[0][0], ([5, 6, PAD, PAD], [0, 1, 0, 1], [0, 2])], PADDED[1]]  # padding with loss 1
    shardwriter.write_dataset(tmp_path / "a", {"train": trained}, VOCAB, strategy="pad", seq_len=SEQ_LEN)
    assert_both_reject(tokenmill_bin, tmp_path / "a", "train-00000.tkm", "record 1", "padding")
    other_id = [PADDED[0], [([7, PAD, 8, PAD], [1, 0, 0, 0], [0, 1])]]  # an id other than pad_id
    shardwriter.write_dataset(tmp_path / "b", {"train": other_id}, VOCAB, strategy="pad", seq_len=SEQ_LEN)
    assert_both_reject(tokenmill_bin, tmp_path / "b", "train-00001.tkm", "record 0", "padding")
    three = [[PADDED[0][0], ([5, 6, PAD, PAD], [0, 1, 0, 0], [0, 1, 2])], PADDED[1]]
    shardwriter.write_dataset(tmp_path / "c", {"train": three}, VOCAB, strategy="pad", seq_len=SEQ_LEN)
    assert_both_reject(tokenmill_bin, tmp_path / "c", "train-00000.tkm", "record 1", "3 documents")


def test_a_pad_build_counts_padding_apart_and_verifies(tokenmill_bin, tmp_path):
    spec = specdata.write_spec(tmp_path, "chatml", "cl100k_base", "pad")
    out = cli.build(tokenmill_bin, spec, tmp_path / "out")
    index = json.loads((out / "index.json").read_text())
    assert index["format_version"] == "1.1"
    split = train(index)
    # Every sequence holds seq_len tokens; the content is what the sources count.
    assert split["tokens"] == split["records"] * specdata.SEQ_LEN
    content = sum(s["tokens"] for s in index["sources"].values())
    assert split["padding_tokens"] == split["tokens"] - content > 0
    # One document a sequence under pad: the documents are the sequences.
    assert split["documents"] == split["records"]
    assert_both_accept(tokenmill_bin, out)
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    patch(damaged, lambda ix: train(ix).update(documents=split["documents"] + 1))
    assert_both_reject(tokenmill_bin, damaged, "index.json", "splits.train.documents")


def test_a_frame_without_content_size_fails_both(tokenmill_bin, padded, tmp_path):
    # FORMAT.md 1.2: every frame carries Frame_Content_Size.
    shardwriter.write_dataset(tmp_path / "n", {"train": PADDED}, VOCAB, strategy="pad", seq_len=SEQ_LEN, content_size=False)
    assert_both_reject(tokenmill_bin, tmp_path / "n", "train-00000.tkm", "chunk 0", "no content size")


EVERY_RESERVED = {"mutate_header": shardwriter.set_reserved_header, "mutate_footer": shardwriter.set_reserved_footer}


def test_reserved_fields_of_a_later_minor_pass_both(tokenmill_bin, tmp_path):
    # FORMAT.md 1.7: a reader of minor 1 ignores reserved fields in a file of minor 9 (the
    # checksums are recomputed, so only the reserved rule is tested).
    shardwriter.write_dataset(tmp_path / "d", {"train": PADDED}, VOCAB, strategy="pad", seq_len=SEQ_LEN, version_minor=9, **EVERY_RESERVED)
    assert_both_accept(tokenmill_bin, tmp_path / "d")


@pytest.mark.parametrize("minor", [0, 1])
@pytest.mark.parametrize(
    "part, hooks",
    [
        ("header", {"mutate_header": shardwriter.set_reserved_header}),
        ("footer", {"mutate_footer": lambda f: f[:20] + b"\x01\x00\x00\x00" + f[24:]}),
        ("entries", {"mutate_footer": shardwriter.set_reserved_entries}),
        ("all", EVERY_RESERVED),
    ],
)
def test_reserved_fields_up_to_the_current_minor_fail_both(tokenmill_bin, tmp_path, minor, part, hooks):
    shardwriter.write_dataset(tmp_path / "d", {"train": PADDED}, VOCAB, strategy="pad", seq_len=SEQ_LEN, version_minor=minor, **hooks)
    assert_both_reject(tokenmill_bin, tmp_path / "d", "train-00000.tkm", "reserved")
