"""Read Tokenmill's packed token shards (docs/FORMAT.md) for training.

>>> from tokenmill import Dataset                       # doctest: +SKIP
>>> ds = Dataset("out/demo", split="train")             # doctest: +SKIP
>>> batch = ds[0]    # input_ids, loss_mask, position_ids, cu_seqlens

Needs numpy, zstandard and xxhash; torch is never imported. Damaged data raises
:class:`ShardError` (a ``ValueError``) naming the file and the part that is wrong.
"""

from .chunk import Record
from .dataset import Dataset
from .errors import ShardError
from .shard import Shard, read_shard

__all__ = ["Dataset", "Record", "Shard", "ShardError", "read_shard", "__version__"]
__version__ = "0.1.0"
