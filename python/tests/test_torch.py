"""Batching for training: ``tokenmill.collate`` (numpy) and ``tokenmill.torch`` (PyTorch).

Every batch is checked against oracles computed here from the stored records
(``Dataset.record``: tokens, loss mask and document starts as the shard holds them), by
plain loops, never against the collate code's own output: the labels (the token where the
loss mask is set, except at a document's first token, else -100), the positions, the
document boundaries and the text of every document, decoded with tiktoken. The datasets
are built by the tokenmill binary from ``specdata``'s records, with templates whose loss
masks have zeros and packings that put several documents in a sequence.

The numpy tests need no torch; the PyTorch tests skip, saying so, where torch is absent.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path

import buildcheck
import cli
import numpy as np
import pytest
import specdata

from tokenmill import Dataset, collate

HERE = Path(__file__).resolve().parent
README = HERE.parents[1] / "README.md"
IGNORE = -100

# (template, tokenizer, strategy): chatml and alpaca train only on responses, so loss
# masks have zeros; best-fit and concat put several documents in a sequence, concat cuts
# documents across sequences, pad stores padding as a document; gpt2 ids are u16, cl100k u32.
BUILDS = {
    "chatml-gpt2-best-fit": ("chatml", "gpt2", "best-fit"),
    "alpaca-cl100k-concat": ("alpaca", "cl100k_base", "concat"),
    "chatml-cl100k-pad": ("chatml", "cl100k_base", "pad"),
}


def build(tokenmill_bin, tmp_path_factory, name: str) -> Path:
    template, tokenizer, strategy = BUILDS[name]
    folder = tmp_path_factory.mktemp(name)
    spec = specdata.write_spec(folder, template, tokenizer, strategy)
    return cli.build(tokenmill_bin, spec, folder / "out")


@pytest.fixture(scope="module", params=list(BUILDS))
def built(request, tokenmill_bin, tmp_path_factory) -> Path:
    return build(tokenmill_bin, tmp_path_factory, request.param)


@pytest.fixture(scope="module")
def small(tokenmill_bin, tmp_path_factory) -> Path:
    return build(tokenmill_bin, tmp_path_factory, "chatml-gpt2-best-fit")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip(
        "torch", reason="torch is not installed (pip install 'tokenmill[torch]'): PyTorch tests skipped"
    )


# -- oracles: plain loops over the stored records ---------------------------------------


def stored_documents(ds: Dataset, i: int) -> list[tuple[list[int], list[bool]]]:
    """Sequence ``i``'s documents as the shard stores them: (tokens, loss mask) each."""
    tokens, mask, starts = ds.record(i)
    bounds = [int(s) for s in starts] + [len(tokens)]
    return [([int(t) for t in tokens[a:b]], [bool(m) for m in mask[a:b]]) for a, b in zip(bounds, bounds[1:])]


def expected_labels(ds: Dataset, i: int) -> list[int]:
    labels = []
    for tokens, mask in stored_documents(ds, i):
        for t, (token, trained) in enumerate(zip(tokens, mask)):
            labels.append(token if trained and t > 0 else IGNORE)
    return labels


def expected_positions(ds: Dataset, i: int) -> list[int]:
    return [t for tokens, _ in stored_documents(ds, i) for t in range(len(tokens))]


def batches_of(n: int, seed: int) -> list[list[int]]:
    """Index lists covering 0..n-1 in a shuffled order, sizes 1-7, plus repeats and negatives."""
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    out = []
    while order:
        size = rng.randint(1, 7)
        out.append(order[:size])
        order = order[size:]
    out.append([0, 0, n - 1, -1])
    return out


def split_at(values, starts) -> list[list[int]]:
    bounds = [int(s) for s in starts]
    return [[int(v) for v in values[a:b]] for a, b in zip(bounds, bounds[1:])]


# -- hand-made items: no binary, no torch -------------------------------------------------


def item(ids, mask, starts) -> dict[str, np.ndarray]:
    """An item as Dataset gives it, written out by hand."""
    n = len(ids)
    bounds = list(starts) + [n]
    positions = [t - a for a, b in zip(bounds, bounds[1:]) for t in range(a, b)]
    return {
        "input_ids": np.array(ids, dtype=np.int64),
        "loss_mask": np.array(mask, dtype=bool),
        "position_ids": np.array(positions, dtype=np.int64),
        "cu_seqlens": np.array(bounds, dtype=np.int32),
    }


def test_varlen_labels_match_transformers_flattening_on_single_documents():
    # transformers' DataCollatorWithFlattening on [1, 2, 3] and [4, 5] (no labels given):
    # labels [-100, 2, 3, -100, 5], position_ids [0, 1, 2, 0, 1].
    batch = collate.varlen([item([1, 2, 3], [1, 1, 1], [0]), item([4, 5], [1, 1], [0])])
    assert batch["labels"].tolist() == [-100, 2, 3, -100, 5]
    assert batch["position_ids"].tolist() == [0, 1, 2, 0, 1]
    assert batch["cu_seqlens"].tolist() == [0, 3, 5]
    assert batch["max_seqlen"] == 3 and isinstance(batch["max_seqlen"], int)
    assert batch["input_ids"].dtype == np.int64 and batch["labels"].dtype == np.int64
    assert batch["position_ids"].dtype == np.int64 and batch["cu_seqlens"].dtype == np.int32


def test_packed_documents_and_loss_mask_give_minus_100():
    # Two documents in the first item (the second starts at 3), one masked prompt token each.
    a = item([10, 11, 12, 20, 21, 22, 23], [0, 1, 1, 1, 0, 1, 1], [0, 3])
    b = item([30, 31], [1, 1], [0])
    flat = collate.varlen([a, b])
    assert flat["labels"].tolist() == [-100, 11, 12, -100, -100, 22, 23, -100, 31]
    assert flat["position_ids"].tolist() == [0, 1, 2, 0, 1, 2, 3, 0, 1]
    assert flat["cu_seqlens"].tolist() == [0, 3, 7, 9]
    assert flat["max_seqlen"] == 4
    pad = collate.padded([a, b], pad_id=99, pad_to_multiple_of=4)
    assert pad["input_ids"].tolist() == [[10, 11, 12, 20, 21, 22, 23, 99], [30, 31, 99, 99, 99, 99, 99, 99]]
    assert pad["labels"].tolist() == [
        [-100, 11, 12, -100, -100, 22, 23, -100],
        [-100, 31, -100, -100, -100, -100, -100, -100],
    ]
    assert pad["attention_mask"].tolist() == [[1] * 7 + [0], [1, 1] + [0] * 6]
    assert pad["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 0], [0, 1, 0, 0, 0, 0, 0, 0]]
    assert collate.labels(a).tolist() == [-100, 11, 12, -100, -100, 22, 23]


def test_padded_lengths_and_refusals():
    items = [item([1, 2, 3], [1, 1, 1], [0]), item([4], [1], [0])]
    assert collate.padded(items, 0)["input_ids"].shape == (2, 3)
    assert collate.padded(items, 0, pad_to=5)["input_ids"].shape == (2, 5)
    assert collate.padded(items, 0, pad_to=5, pad_to_multiple_of=4)["input_ids"].shape == (2, 8)
    assert collate.padded(items, 0, pad_to_multiple_of=8)["attention_mask"].sum(axis=1).tolist() == [3, 1]
    with pytest.raises(ValueError, match="pad_to=2"):
        collate.padded(items, 0, pad_to=2)
    with pytest.raises(ValueError, match="at least one item"):
        collate.padded([], 0)
    with pytest.raises(ValueError, match="at least one item"):
        collate.varlen([])
    broken = item([1, 2], [1, 1], [0])
    broken["cu_seqlens"] = np.array([0, 5], dtype=np.int32)
    with pytest.raises(ValueError, match="cu_seqlens"):
        collate.varlen([broken])


def test_collate_imports_no_torch():
    code = "import sys, tokenmill, tokenmill.collate; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE.parent)


def test_tokenmill_torch_without_torch_says_what_to_install():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n    import tokenmill.torch\nexcept ImportError as e:\n    print(e)\n"
        "else:\n    raise SystemExit('imported without torch')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE.parent)
    assert result.returncode == 0, result.stderr
    assert "tokenmill[torch]" in result.stdout


# -- built datasets, numpy ----------------------------------------------------------------


@pytest.mark.binary
def test_built_datasets_exercise_masks_and_packing(built):
    with Dataset(built) as ds:
        documents = [stored_documents(ds, i) for i in range(len(ds))]
    assert any(len(docs) > 1 for docs in documents), "no sequence holds several documents"
    masks = [m for docs in documents for _, mask in docs for m in mask]
    assert not all(masks) and any(masks), "the loss masks should hold both 0 and 1"


@pytest.mark.binary
def test_varlen_batches_match_the_stored_records(built):
    with Dataset(built) as ds:
        for indices in batches_of(len(ds), seed=1):
            batch = collate.varlen(ds.__getitems__(indices))
            docs = [doc for i in indices for doc in stored_documents(ds, i)]
            assert batch["input_ids"].tolist() == [t for tokens, _ in docs for t in tokens]
            assert batch["labels"].tolist() == [x for i in indices for x in expected_labels(ds, i)]
            assert batch["position_ids"].tolist() == [p for i in indices for p in expected_positions(ds, i)]
            lengths = [len(tokens) for tokens, _ in docs]
            assert batch["cu_seqlens"].tolist() == [sum(lengths[:k]) for k in range(len(lengths) + 1)]
            assert batch["max_seqlen"] == max(lengths)
            assert batch["cu_seqlens"].dtype == np.int32 and batch["labels"].dtype == np.int64


@pytest.mark.binary
def test_padded_batches_match_the_stored_records(built):
    with Dataset(built) as ds:
        pad_id = ds.index.raw["tokenizer"]["pad_id"]
        for k, indices in enumerate(batches_of(len(ds), seed=2)):
            options = [{}, {"pad_to": ds.seq_len}, {"pad_to_multiple_of": 16}][k % 3]
            items = [ds[i] for i in indices]
            batch = collate.padded(items, pad_id, **options)
            lengths = [len(ds.record(i).tokens) for i in indices]
            width = options.get("pad_to", max(lengths))
            if "pad_to_multiple_of" in options:
                width = math.ceil(width / 16) * 16
            for key in ("input_ids", "labels", "attention_mask", "position_ids"):
                assert batch[key].shape == (len(indices), width) and batch[key].dtype == np.int64, key
            assert batch["attention_mask"].sum(axis=1).tolist() == lengths
            for row, (i, n) in enumerate(zip(indices, lengths)):
                tokens = ds.record(i).tokens.tolist()
                assert batch["input_ids"][row].tolist() == tokens + [pad_id] * (width - n)
                assert batch["labels"][row].tolist() == expected_labels(ds, i) + [IGNORE] * (width - n)
                assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
                assert batch["position_ids"][row].tolist() == expected_positions(ds, i) + [0] * (width - n)
            # The real tokens of a padded batch carry the flattened batch's labels.
            flat = collate.varlen(items)
            assert (batch["labels"][batch["attention_mask"] == 1] == flat["labels"]).all()


@pytest.mark.binary
def test_every_document_decodes_to_the_same_text_whichever_way_it_is_read(built):
    with Dataset(built) as ds:
        encoding, _ = buildcheck.encoding_for(ds.index.raw)

        def decode(docs):
            return [encoding.decode(tokens) for tokens in docs]

        for indices in batches_of(len(ds), seed=3):
            want = decode([tokens for i in indices for tokens, _ in stored_documents(ds, i)])
            assert all(want), "a document decodes to nothing"
            items = [ds[i] for i in indices]
            plain = decode([d for it in items for d in split_at(it["input_ids"], it["cu_seqlens"])])
            flat = collate.varlen(items)
            varlen = decode(split_at(flat["input_ids"], flat["cu_seqlens"]))
            pad = collate.padded(items, ds.pad_id)
            padded = []
            for row in range(len(items)):
                n = int(pad["attention_mask"][row].sum())
                starts = np.flatnonzero(pad["position_ids"][row, :n] == 0).tolist() + [n]
                padded += decode(split_at(pad["input_ids"][row], starts))
            assert plain == want
            assert varlen == want
            assert padded == want


@pytest.mark.binary
def test_getitems_gives_getitem_in_the_asked_order(built):
    with Dataset(built, cache_chunks=1) as ds:
        n = len(ds)
        indices = [n - 1, 0, 3, 0, -2, n // 2, 1]
        for got, i in zip(ds.__getitems__(indices), indices):
            want = ds[i]
            assert got.keys() == want.keys()
            for key in want:
                assert got[key].dtype == want[key].dtype and (got[key] == want[key]).all(), key
        assert ds.__getitems__([]) == []
        with pytest.raises(IndexError):
            ds.__getitems__([0, n])


# -- PyTorch ------------------------------------------------------------------------------


def assert_same_batch(a: dict, b: dict, torch) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.binary
def test_torch_dataset_gives_the_items_as_tensors(built, torch):
    from tokenmill.torch import TokenmillDataset

    tds = TokenmillDataset(built)
    with Dataset(built) as ds:
        assert len(tds) == len(ds)
        assert (tds.vocab_size, tds.seq_len, tds.pad_id) == (ds.vocab_size, ds.seq_len, ds.index.pad_id)
        dtypes = {
            "input_ids": torch.int64,
            "loss_mask": torch.bool,
            "position_ids": torch.int64,
            "cu_seqlens": torch.int32,
        }
        for i in range(len(ds)):
            got, want = tds[i], ds[i]
            assert {k: v.dtype for k, v in got.items()} == dtypes
            for key in want:
                assert got[key].tolist() == want[key].tolist(), key
        again = pickle.loads(pickle.dumps(tds))
        assert len(again) == len(tds)
        assert_same_batch(again[len(tds) - 1], tds[len(tds) - 1], torch)
        indices = [2, 0, 2]
        for got, i in zip(tds.__getitems__(indices), indices):
            assert_same_batch(got, tds[i], torch)
    tds.close()


@pytest.mark.binary
def test_collators_give_tensors_of_the_checked_numpy_batches(built, torch):
    from tokenmill.torch import PaddedCollator, TokenmillDataset, VarlenCollator

    tds = TokenmillDataset(built)
    indices = [0, len(tds) - 1, 1]
    items = [tds[i] for i in indices]
    with Dataset(built) as ds:
        flat = collate.varlen([ds[i] for i in indices])
        pad_id = ds.index.raw["tokenizer"]["pad_id"]
        pad = collate.padded([ds[i] for i in indices], pad_id)

    got = VarlenCollator()(items)
    assert set(got) == {"input_ids", "labels", "position_ids", "cu_seqlens", "max_seqlen"}
    for key in ("input_ids", "labels", "position_ids"):
        assert got[key].dtype == torch.long and got[key].tolist() == flat[key].tolist(), key
    assert got["cu_seqlens"].dtype == torch.int32
    assert got["cu_seqlens"].tolist() == flat["cu_seqlens"].tolist()
    assert got["max_seqlen"] == flat["max_seqlen"] and isinstance(got["max_seqlen"], int)

    hf = VarlenCollator(batch_dim=True, flash_attn_kwargs=True)(items)
    total = len(flat["input_ids"])
    for key in ("input_ids", "labels", "position_ids"):
        assert hf[key].shape == (1, total) and hf[key][0].tolist() == flat[key].tolist(), key
    assert hf["cu_seq_lens_q"].dtype == torch.int32
    assert hf["cu_seq_lens_q"].tolist() == hf["cu_seq_lens_k"].tolist() == flat["cu_seqlens"].tolist()
    assert hf["max_length_q"] == hf["max_length_k"] == flat["max_seqlen"]

    for collator in (
        PaddedCollator(tds),
        PaddedCollator(tds.dataset),
        PaddedCollator(str(built)),
        PaddedCollator(pad_id=pad_id),
    ):
        assert collator.pad_id == pad_id
        got = collator(items)
        assert set(got) == {"input_ids", "labels", "attention_mask", "position_ids"}
        for key in got:
            assert got[key].dtype == torch.long and got[key].tolist() == pad[key].tolist(), key
    fixed = PaddedCollator(tds, pad_to=tds.seq_len)(items)
    assert fixed["input_ids"].shape == (len(items), tds.seq_len)
    with pytest.raises(ValueError, match="pad_id"):
        PaddedCollator()
    pickle.loads(pickle.dumps(PaddedCollator(tds)))
    pickle.loads(pickle.dumps(VarlenCollator()))


@pytest.mark.binary
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_shares_the_dataset_between_ranks(small, torch, drop_last):
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    from tokenmill.torch import TokenmillDataset, VarlenCollator

    tds = TokenmillDataset(small)
    n = len(tds)
    ranks = 2
    seen: list[int] = []
    documents: list[tuple[int, ...]] = []
    for rank in range(ranks):
        sampler = DistributedSampler(
            tds, num_replicas=ranks, rank=rank, shuffle=True, seed=5, drop_last=drop_last
        )
        sampler.set_epoch(1)
        mine = list(sampler)
        seen += mine
        for batch in DataLoader(tds, batch_size=3, sampler=sampler, collate_fn=VarlenCollator()):
            documents += [tuple(d) for d in split_at(batch["input_ids"], batch["cu_seqlens"])]
    counts = {i: seen.count(i) for i in range(n)}
    assert set(seen) <= set(range(n))
    if drop_last:
        # torch drops the n % ranks last indices of the shuffled order: none is seen twice.
        assert len(seen) == n - n % ranks and max(counts.values()) == 1
    else:
        # torch repeats the first indices to give every rank as many: all are seen.
        assert len(seen) == math.ceil(n / ranks) * ranks and min(counts.values()) >= 1
        assert sum(c - 1 for c in counts.values()) == len(seen) - n
    if n % ranks == 0:
        assert all(c == 1 for c in counts.values()), "an even split covers every index exactly once"
    # The batches the ranks' loaders give hold exactly the documents of the indices they drew.
    with Dataset(small) as ds:
        want = sorted(tuple(tokens) for i in seen for tokens, _ in stored_documents(ds, i))
    assert sorted(documents) == want


@pytest.mark.binary
@pytest.mark.parametrize("collator", ["varlen", "padded"])
def test_worker_processes_give_the_same_batches(small, torch, collator):
    from torch.utils.data import DataLoader

    from tokenmill.torch import PaddedCollator, TokenmillDataset, VarlenCollator

    tds = TokenmillDataset(small)
    collate_fn = VarlenCollator() if collator == "varlen" else PaddedCollator(tds, pad_to_multiple_of=8)

    def batches(**options):
        loader = DataLoader(
            tds,
            batch_size=4,
            shuffle=True,
            generator=torch.Generator().manual_seed(11),
            collate_fn=collate_fn,
            **options,
        )
        return list(loader)

    inline = batches(num_workers=0)
    assert len(inline) == math.ceil(len(tds) / 4)
    for options in ({"num_workers": 2}, {"num_workers": 2, "multiprocessing_context": "spawn"}):
        workers = batches(**options)
        assert len(workers) == len(inline)
        for a, b in zip(inline, workers):
            assert_same_batch(a, b, torch)


def readme_block(title: str) -> str:
    """The first ```python block after the heading ``title`` in the repository's README."""
    text = README.read_text(encoding="utf-8")
    heading = re.search(rf"^#+ {re.escape(title)}$", text, flags=re.M)
    assert heading, f"README.md has no section {title!r}"
    block = re.compile(r"^```python\n(.*?)^```$", flags=re.M | re.S).search(text, heading.end())
    assert block, f"README.md's section {title!r} has no python block"
    return block.group(1)


@pytest.mark.binary
def test_readme_training_loop_runs(small, torch, tmp_path, monkeypatch):
    code = readme_block("Training with PyTorch")
    assert len(code.strip().splitlines()) <= 14, "the README's example should stay short"
    # The block reads build/demo: run it, unchanged, where build/demo is the small build.
    (tmp_path / "build").mkdir()
    os.symlink(small, tmp_path / "build" / "demo")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)

    with Dataset(small) as ds:
        sequences, vocab = len(ds), ds.vocab_size
    loss, logits, batch = namespace["loss"], namespace["logits"], namespace["batch"]
    assert namespace["step"] == math.ceil(sequences / 2) - 1, "the loop did not run over every batch"
    assert torch.isfinite(loss) and loss.ndim == 0
    assert 0 < loss.item() < 2 * math.log(vocab), loss.item()
    total = batch["input_ids"].shape[0]
    assert batch["input_ids"].shape == batch["labels"].shape == batch["position_ids"].shape == (total,)
    assert logits.shape == (total, vocab)
    assert int(batch["cu_seqlens"][-1]) == total
