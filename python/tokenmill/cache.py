"""A small least-recently-used cache of decompressed chunks.

One cache is shared by all shards of a :class:`~tokenmill.Dataset`, so its memory bound
(``capacity`` chunks of roughly 1 MiB each) holds however many shards the split has.
A plain ``OrderedDict`` is enough: one lookup costs far less than one zstd frame, and
``functools.lru_cache`` was rejected because it would pin the shard objects (and their
memory maps) through its keys after the dataset is gone. A lock makes it safe for
threads sharing one dataset (a thread-pool loader); its cost is noise next to a frame.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LRUCache(Generic[V]):
    """Maps keys to values, evicting the least recently used beyond ``capacity``.

    ``capacity`` 0 disables caching (every access decompresses again).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
