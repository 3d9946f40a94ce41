"""Batches of :class:`tokenmill.Dataset` items, in numpy (no torch needed).

Two layouts:

- :func:`varlen`: every item of the batch laid end to end in one row, with ``cu_seqlens``
  over all documents: what flash-attention's varlen kernels (``flash_attn_varlen_func``)
  and Hugging Face's padding-free path take. No padding.
- :func:`padded`: one row per item, right-padded to a common length, with an
  ``attention_mask``: what a model without varlen attention takes.

Labels follow the Hugging Face convention: ``labels`` is *not* shifted; the model (or the
loss) predicts ``labels[t]`` from the logits at ``t - 1``, and ``-100`` (PyTorch's default
``ignore_index``) marks a position whose prediction does not count. A position is -100:

- where ``loss_mask`` is False (prompt, role headers, padding), since ``loss_mask[t]``
  says whether the loss of predicting token ``t`` counts (docs/FORMAT.md 1.2);
- at the first token of every document, whatever its ``loss_mask``. The logits that
  would predict it belong to the previous document's last token (or the previous item's,
  once a batch is flattened), which the document's first token does not follow. This is
  transformers' ``DataCollatorWithFlattening`` (labels ``[-100] + labels[1:]`` per
  example) and TRL's padding-free ``DataCollatorForLanguageModeling`` (labels -100
  wherever ``position_ids == 0``), applied to every document a packed sequence holds, not
  only to the first. A document that ``concat`` cut at a sequence boundary starts again
  at offset 0 of the next sequence; its first token there is -100 too, since the batch
  does not hold the tokens it follows.

:func:`padded` uses the same labels as :func:`varlen` (the first token of every document,
not only of every row, is -100), so the real tokens of a padded batch carry exactly the
labels of the flattened one, and a model trained on either sees the same targets. Within
a row the positions restart at 0 at every document, as in the items; a model that takes
only ``attention_mask`` still attends across the documents of a row (use :func:`varlen`
to keep them apart).

Items may hold numpy arrays or CPU torch tensors (anything ``np.asarray`` reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: The label of a position whose prediction does not count (``torch.nn.CrossEntropyLoss``'s default).
IGNORE_INDEX = -100

_INT32_MAX = (1 << 31) - 1


def _fields(item: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ids = np.asarray(item["input_ids"]).astype(np.int64, copy=False)
    mask = np.asarray(item["loss_mask"]).astype(bool, copy=False)
    positions = np.asarray(item["position_ids"]).astype(np.int64, copy=False)
    cu = np.asarray(item["cu_seqlens"]).astype(np.int64, copy=False)
    n = len(ids)
    if ids.ndim != 1 or mask.shape != ids.shape or positions.shape != ids.shape:
        raise ValueError(
            f"an item's input_ids, loss_mask and position_ids must be 1-D of one length; got shapes "
            f"{ids.shape}, {mask.shape}, {positions.shape}"
        )
    if cu.ndim != 1 or len(cu) < 2 or cu[0] != 0 or cu[-1] != n or (np.diff(cu) <= 0).any():
        raise ValueError(
            f"an item's cu_seqlens must rise strictly from 0 to its length {n}; got {cu.tolist()}"
        )
    return ids, mask, positions, cu


def labels(item: Mapping[str, Any]) -> np.ndarray:
    """The labels of one item: ``input_ids`` where ``loss_mask``, else -100, and -100 at every
    document start (see the module docstring). int64, unshifted."""
    ids, mask, _, cu = _fields(item)
    return _labels(ids, mask, cu)


def _labels(ids: np.ndarray, mask: np.ndarray, cu: np.ndarray) -> np.ndarray:
    out = np.where(mask, ids, IGNORE_INDEX)
    out[cu[:-1]] = IGNORE_INDEX
    return out


def varlen(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The items laid end to end in one flat row, for varlen (flash) attention.

    Returns ``input_ids`` int64 ``(total,)``, ``labels`` int64 ``(total,)`` (-100 where the
    loss does not count and at every document start), ``position_ids`` int64 ``(total,)``
    (restarting at 0 at every document), ``cu_seqlens`` int32 ``(documents + 1,)`` over
    all documents of all items (each item's document starts shifted by the tokens before
    it, then ``total``) and ``max_seqlen`` (a Python int: the longest document).

    Since the first token of every document is -100, a loss over the flat row may shift
    across item boundaries (``cross_entropy(logits[:-1], labels[1:])``) and never
    predicts one document's first token from another's last.
    """
    if len(items) == 0:
        raise ValueError("varlen() needs at least one item")
    ids, labs, positions, starts = [], [], [], []
    offset = 0
    for item in items:
        i, m, p, cu = _fields(item)
        ids.append(i)
        labs.append(_labels(i, m, cu))
        positions.append(p)
        starts.append(cu[:-1] + offset)
        offset += len(i)
    if offset > _INT32_MAX:
        raise ValueError(f"a varlen batch of {offset} tokens does not fit cu_seqlens' int32")
    cu_seqlens = np.concatenate([*starts, [offset]]).astype(np.int32)
    return {
        "input_ids": np.concatenate(ids),
        "labels": np.concatenate(labs),
        "position_ids": np.concatenate(positions),
        "cu_seqlens": cu_seqlens,
        "max_seqlen": int(np.diff(cu_seqlens).max()),
    }


def padded(
    items: Sequence[Mapping[str, Any]],
    pad_id: int,
    pad_to: int | None = None,
    pad_to_multiple_of: int | None = None,
) -> dict[str, np.ndarray]:
    """The items as the rows of a right-padded ``(B, L)`` batch.

    ``L`` is the longest item, or ``pad_to`` (an item longer than ``pad_to`` raises
    ``ValueError``: nothing is truncated), rounded up to a multiple of
    ``pad_to_multiple_of``. Returns int64 arrays:

    - ``input_ids``: the tokens, then ``pad_id`` (index.json's ``tokenizer.pad_id`` is the
      natural choice; it must be an id the model embeds);
    - ``labels``: as :func:`varlen`'s, row by row, and -100 on padding;
    - ``attention_mask``: 1 on the item's tokens, 0 on padding (a ``pad``-strategy
      dataset's stored padding document is part of the item, so it is 1 there, with
      labels -100 and positions restarting at 0);
    - ``position_ids``: the item's (restarting at 0 at every document), 0 on padding, as
      TRL pads them (out of any real position's way and within every model's range).
    """
    if len(items) == 0:
        raise ValueError("padded() needs at least one item")
    fields = [_fields(item) for item in items]
    longest = max(len(f[0]) for f in fields)
    length = longest
    if pad_to is not None:
        if pad_to < longest:
            raise ValueError(f"an item holds {longest} tokens, more than pad_to={pad_to}")
        length = pad_to
    if pad_to_multiple_of is not None:
        if pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of must be >= 1, got {pad_to_multiple_of}")
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    rows = len(fields)
    input_ids = np.full((rows, length), pad_id, dtype=np.int64)
    labs = np.full((rows, length), IGNORE_INDEX, dtype=np.int64)
    attention_mask = np.zeros((rows, length), dtype=np.int64)
    position_ids = np.zeros((rows, length), dtype=np.int64)
    for row, (ids, mask, positions, cu) in enumerate(fields):
        n = len(ids)
        input_ids[row, :n] = ids
        labs[row, :n] = _labels(ids, mask, cu)
        attention_mask[row, :n] = 1
        position_ids[row, :n] = positions
    return {
        "input_ids": input_ids,
        "labels": labs,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
    }
