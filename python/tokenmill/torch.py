"""PyTorch glue: a map-style dataset of tensors and collate callables (the ``torch`` extra).

>>> from tokenmill.torch import TokenmillDataset, VarlenCollator     # doctest: +SKIP
>>> ds = TokenmillDataset("build/demo", split="train")               # doctest: +SKIP
>>> loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True,
...                                      num_workers=2, collate_fn=VarlenCollator())  # doctest: +SKIP

This module imports torch when it is imported; ``import tokenmill`` never does. The
batching itself is :mod:`tokenmill.collate` (numpy); here it only becomes tensors. Label
conventions (unshifted, -100 where the loss does not count and at every document start)
are described there.

:class:`TokenmillDataset` pickles by path (the numpy :class:`tokenmill.Dataset` inside it
reopens its files), so ``DataLoader`` workers work under fork, spawn and forkserver, and
it has nothing but ``__len__`` and ``__getitem__`` for a sampler to need:
``torch.utils.data.distributed.DistributedSampler(ds, num_replicas=N, rank=R)`` shards it
without a process group.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

try:
    import torch
    from torch.utils.data import Dataset as _TorchDataset
except ImportError as error:  # pragma: no cover - exercised where torch is absent
    raise ImportError(
        "tokenmill.torch needs PyTorch, which is not installed: pip install 'tokenmill[torch]' "
        "(or torch); the numpy reader, tokenmill.Dataset, and tokenmill.collate need no torch"
    ) from error

import numpy as np

from . import collate
from .dataset import Dataset
from .index import load_index

__all__ = ["TokenmillDataset", "VarlenCollator", "PaddedCollator"]


def _tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


class TokenmillDataset(_TorchDataset):
    """Split ``split`` of the dataset in ``directory`` as a map-style torch dataset.

    Item ``i`` is :class:`tokenmill.Dataset`'s item as tensors sharing its memory:
    ``input_ids`` int64, ``loss_mask`` bool, ``position_ids`` int64 (restarting at every
    document), ``cu_seqlens`` int32. ``dataset`` is the numpy dataset behind it (metadata,
    :meth:`tokenmill.Dataset.verify`, ...).
    """

    def __init__(
        self, directory: str | os.PathLike[str], split: str = "train", *, cache_chunks: int = 8
    ) -> None:
        self.dataset = Dataset(directory, split, cache_chunks=cache_chunks)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {key: torch.from_numpy(value) for key, value in self.dataset[i].items()}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """A batch's items, read in storage order (:meth:`tokenmill.Dataset.__getitems__`)."""
        return [
            {key: torch.from_numpy(value) for key, value in item.items()}
            for item in self.dataset.__getitems__(indices)
        ]

    @property
    def directory(self) -> str:
        return self.dataset.directory

    @property
    def split(self) -> str:
        return self.dataset.split

    @property
    def vocab_size(self) -> int:
        return self.dataset.vocab_size

    @property
    def seq_len(self) -> int:
        return self.dataset.seq_len

    @property
    def pad_id(self) -> int:
        return self.dataset.pad_id

    @property
    def eos_id(self) -> int:
        return self.dataset.eos_id

    def close(self) -> None:
        self.dataset.close()

    def __repr__(self) -> str:
        return f"TokenmillDataset({self.directory!r}, split={self.split!r}, sequences={len(self)})"


class VarlenCollator:
    """``collate_fn`` giving one flat, unpadded batch (:func:`tokenmill.collate.varlen`).

    Returns ``input_ids``, ``labels``, ``position_ids`` (int64, ``(total,)``),
    ``cu_seqlens`` (int32, ``(documents + 1,)``) and ``max_seqlen`` (int): the arguments
    of ``flash_attn_varlen_func`` and of rotary embeddings. ``batch_dim=True`` gives
    ``input_ids``, ``labels`` and ``position_ids`` the leading dimension of 1 that
    transformers models take (``(1, total)``, as ``DataCollatorWithFlattening`` returns);
    ``flash_attn_kwargs=True`` adds ``cu_seq_lens_q``/``cu_seq_lens_k`` and
    ``max_length_q``/``max_length_k``, the names of transformers' ``FlashAttentionKwargs``.
    """

    def __init__(self, *, batch_dim: bool = False, flash_attn_kwargs: bool = False) -> None:
        self.batch_dim = batch_dim
        self.flash_attn_kwargs = flash_attn_kwargs

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        batch = collate.varlen(items)
        out: dict[str, Any] = {}
        for key in ("input_ids", "labels", "position_ids"):
            tensor = _tensor(batch[key], torch.long)
            out[key] = tensor.unsqueeze(0) if self.batch_dim else tensor
        out["cu_seqlens"] = _tensor(batch["cu_seqlens"], torch.int32)
        out["max_seqlen"] = batch["max_seqlen"]
        if self.flash_attn_kwargs:
            out["cu_seq_lens_q"] = out["cu_seq_lens_k"] = out["cu_seqlens"]
            out["max_length_q"] = out["max_length_k"] = batch["max_seqlen"]
        return out

    def __repr__(self) -> str:
        return f"VarlenCollator(batch_dim={self.batch_dim}, flash_attn_kwargs={self.flash_attn_kwargs})"


_Source = Union[TokenmillDataset, Dataset, str, os.PathLike]


class PaddedCollator:
    """``collate_fn`` giving a right-padded ``(B, L)`` batch (:func:`tokenmill.collate.padded`).

    Returns int64 (``torch.long``) ``input_ids``, ``labels``, ``attention_mask`` (1 on
    tokens, 0 on padding, as transformers' tokenizers give it) and ``position_ids``.
    ``pad_id`` defaults to index.json's ``tokenizer.pad_id`` of ``dataset`` (a
    :class:`TokenmillDataset`, a :class:`tokenmill.Dataset` or a dataset directory):
    ``PaddedCollator(ds)``; give one of the two. ``pad_to`` and ``pad_to_multiple_of``
    fix ``L`` (``pad_to=ds.seq_len`` gives every batch one shape).
    """

    def __init__(
        self,
        dataset: _Source | None = None,
        *,
        pad_id: int | None = None,
        pad_to: int | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        if pad_id is None:
            if dataset is None:
                raise ValueError("PaddedCollator needs a dataset (for index.json's pad_id) or pad_id")
            if isinstance(dataset, (TokenmillDataset, Dataset)):
                pad_id = dataset.pad_id
            else:
                pad_id = load_index(dataset).pad_id
        self.pad_id = int(pad_id)
        self.pad_to = pad_to
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = collate.padded(items, self.pad_id, self.pad_to, self.pad_to_multiple_of)
        return {key: _tensor(value, torch.long) for key, value in batch.items()}

    def __repr__(self) -> str:
        return (
            f"PaddedCollator(pad_id={self.pad_id}, pad_to={self.pad_to}, "
            f"pad_to_multiple_of={self.pad_to_multiple_of})"
        )
