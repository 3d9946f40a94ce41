"""``Dataset``: the trainer's view of one split, as a sequence of training examples.

>>> ds = Dataset("out/demo", split="train")          # doctest: +SKIP
>>> example = ds[0]                                   # doctest: +SKIP
>>> example["input_ids"], example["cu_seqlens"]       # doctest: +SKIP

Each example is a dict of numpy arrays:

- ``input_ids`` int64 ``(n,)``: the token ids.
- ``loss_mask`` bool ``(n,)``: True where the loss of predicting that token counts.
  ``bool`` rather than ``uint8`` so it indexes directly (``labels[~mask] = -100``) and
  ``torch.from_numpy`` gives a ``torch.bool`` tensor.
- ``position_ids`` int64 ``(n,)``: restart at 0 at every document start.
- ``cu_seqlens`` int32 ``(documents + 1,)``: the document starts followed by ``n``, the
  layout flash-attention's varlen kernels take.

int64 for ids and positions because that is what ``torch.nn.Embedding`` and
``F.cross_entropy`` index with; converting once here saves every trainer the cast.

The class needs no torch: it has ``__len__`` and ``__getitem__``, which is all a
``torch.utils.data.DataLoader`` asks of a map-style dataset, and it pickles by name (the
worker reopens the files), since memory maps cannot be pickled.
"""

from __future__ import annotations

import bisect
import operator
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .cache import LRUCache
from .chunk import Chunk, Record
from .errors import ShardError
from .index import Index, load_index
from .shard import Shard


class Dataset:
    """Random access to the sequences of ``split`` in the dataset directory ``directory``.

    Opening checks ``index.json`` and every shard's header, trailer and footer against
    it (sizes, record and token counts, token width); each chunk is checked when first
    read. :meth:`verify` checks everything, including the whole-file checksums.
    ``cache_chunks`` bounds memory: at most that many decompressed chunks (about 1 MiB
    each) are kept, across all shards.
    """

    def __init__(
        self, directory: str | os.PathLike[str], split: str = "train", *, cache_chunks: int = 8
    ) -> None:
        self.directory = os.fspath(directory)
        self.split = split
        self.cache_chunks = cache_chunks
        self.index: Index = load_index(self.directory)
        if split not in self.index.splits:
            raise ValueError(
                f"{self.index.path}: no split {split!r}; the dataset has {sorted(self.index.splits)}"
            )
        self._cache: LRUCache[Chunk] = LRUCache(cache_chunks)
        self.shards: list[Shard] = []
        self._starts: list[int] = []  # first global index of each shard, for bisect
        entry = self.index.splits[split]
        try:
            total = 0
            for shard_entry in entry.shards:
                shard = Shard(
                    os.path.join(self.directory, shard_entry.file),
                    vocab_size=self.vocab_size,
                    expected_size=shard_entry.bytes,
                    cache=self._cache,
                )
                self.shards.append(shard)
                self._check_against_index(shard, shard_entry.records, shard_entry.tokens)
                self._starts.append(total)
                total += len(shard)
        except BaseException:
            self.close()
            raise
        self._length = total

    def _check_against_index(self, shard: Shard, records: int, tokens: int) -> None:
        width = 2 if self.index.dtype == "uint16" else 4
        if shard.header.token_width != width:
            raise ShardError(
                shard.path,
                "header.token_width",
                f"{shard.header.token_width}, index.json dtype is {self.index.dtype}",
            )
        if len(shard) != records:
            raise ShardError(shard.path, "footer.record_count", f"{len(shard)}, index.json says {records}")
        if shard.token_count != tokens:
            raise ShardError(
                shard.path, "footer.token_count", f"{shard.token_count}, index.json says {tokens}"
            )

    # -- metadata --------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return self.index.vocab_size

    @property
    def seq_len(self) -> int:
        return self.index.seq_len

    @property
    def pad_id(self) -> int:
        """index.json's ``tokenizer.pad_id``: what :func:`tokenmill.collate.padded` pads with."""
        return self.index.pad_id

    @property
    def eos_id(self) -> int:
        return self.index.eos_id

    @property
    def tokenizer(self) -> dict[str, Any]:
        return self.index.raw["tokenizer"]

    @property
    def token_count(self) -> int:
        return self.index.splits[self.split].tokens

    # -- access ----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._length

    def record(self, i: int) -> Record:
        """Sequence ``i`` as stored (token-width ids, views into the cache); negatives count from the end."""
        i = operator.index(i)
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError(f"index {i} out of range for split {self.split!r} of {self._length} sequences")
        s = bisect.bisect_right(self._starts, i) - 1
        return self.shards[s][i - self._starts[s]]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        tokens, loss_mask, starts = self.record(i)
        n = len(tokens)
        bounds = np.append(starts.astype(np.int64), n)
        position_ids = np.arange(n, dtype=np.int64) - np.repeat(bounds[:-1], np.diff(bounds))
        return {
            "input_ids": tokens.astype(np.int64),
            "loss_mask": loss_mask,  # already a fresh array (unpacked from bits)
            "position_ids": position_ids,
            "cu_seqlens": bounds.astype(np.int32),
        }

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
        """``[self[i] for i in indices]``, read in storage order.

        Reading in index order keeps each chunk's records together, so a chunk is
        decompressed at most once per call however many chunks the batch touches (with
        ``cache_chunks`` >= 1). ``torch.utils.data.DataLoader`` calls this method, when a
        dataset has it, with each batch's indices.
        """
        positions = [operator.index(i) for i in indices]
        length = self._length or 1  # an out-of-range index raises below, wherever it sorts
        order = sorted(range(len(positions)), key=lambda k: positions[k] % length)
        items: list[dict[str, np.ndarray]] = [{}] * len(positions)
        for k in order:
            items[k] = self[positions[k]]
        return items

    def __iter__(self):
        for i in range(self._length):
            yield self[i]

    # -- checks ----------------------------------------------------------------------

    def verify(self) -> None:
        """Check the split completely, as ``tokenmill verify`` does (docs/FORMAT.md §2.5).

        Every shard's whole-file xxh3 against index.json and every chunk; under strategy
        ``pad`` every record against the padding rule; the split's ``documents`` and
        ``padding_tokens`` against what the shards hold. Reads every byte of the split;
        raises :class:`ShardError` on the first damage.
        """
        index = self.index
        vocabulary = index.raw["tokenizer"].get("file")
        if vocabulary is not None:
            import xxhash

            where = os.path.join(self.directory, vocabulary)
            if not os.path.isfile(where):
                raise ShardError(where, "tokenizer.file", "named by index.json but missing")
            with open(where, "rb") as f:
                if xxhash.xxh3_64_hexdigest(f.read()) != index.raw["tokenizer"]["vocab_hash"]:
                    raise ShardError(where, "tokenizer.file", "its xxh3-64 differs from index.json's tokenizer.vocab_hash")
        split = index.splits[self.split]
        pad = (index.seq_len, index.pad_id) if index.strategy == "pad" else None
        starts = padded = padding = 0
        for shard, entry in zip(self.shards, split.shards):
            contents = shard.verify(checksum=entry.checksum, pad=pad)
            starts += contents.document_starts
            padded += contents.padded_records
            padding += contents.padding_tokens
        # A 1.0 index counted the padding documents too, and has no padding_tokens.
        documents = starts - (padded if split.padding_tokens is not None else 0)
        where = f"splits.{self.split}"
        if split.documents != documents:
            raise ShardError(
                index.path,
                f"{where}.documents",
                f"{split.documents}, but its shards hold {documents} documents "
                f"({starts} document starts, {padded} of them padding)",
            )
        if split.padding_tokens is not None and split.padding_tokens != padding:
            raise ShardError(
                index.path,
                f"{where}.padding_tokens",
                f"{split.padding_tokens}, but its shards hold {padding} padding tokens",
            )

    # -- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        self._cache.clear()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "split": self.split, "cache_chunks": self.cache_chunks}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"], state["split"], cache_chunks=state["cache_chunks"])

    def __repr__(self) -> str:
        return f"Dataset({self.directory!r}, split={self.split!r}, sequences={self._length})"
