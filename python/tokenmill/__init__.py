"""Read Tokenmill's packed token shards (docs/FORMAT.md) for training.

>>> from tokenmill import Dataset                       # doctest: +SKIP
>>> ds = Dataset("out/demo", split="train")             # doctest: +SKIP
>>> batch = ds[0]    # input_ids, loss_mask, position_ids, cu_seqlens

Needs numpy, zstandard and xxhash; ``import tokenmill`` never imports torch. Damaged data raises
:class:`ShardError` (a ``ValueError``) naming the file and the part that is wrong.
:mod:`tokenmill.collate` batches items (numpy); :mod:`tokenmill.torch`, the one module
that imports torch (the ``torch`` extra), wraps the dataset and the collate functions.
"""

from . import collate
from .chunk import Record
from .dataset import Dataset
from .errors import ShardError
from .shard import Shard, read_shard

__all__ = ["Dataset", "collate", "Record", "Shard", "ShardError", "read_shard", "__version__"]
__version__ = "0.1.0"
