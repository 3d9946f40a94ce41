"""The one exception type of the reader.

Every way a dataset directory can fail to match ``docs/FORMAT.md`` (a flipped byte, a
truncated shard, an ``index.json`` that disagrees with its shards, a token id beyond the
vocabulary) surfaces as :class:`ShardError`, so a trainer can catch exactly "this data is
damaged" and nothing else. It subclasses ``ValueError`` because damaged data is a bad
value, not an I/O failure: ``OSError`` stays reserved for the operating system's own
errors (permission denied, a missing directory).
"""

from __future__ import annotations

import os


class ShardError(ValueError):
    """A dataset file does not follow the format.

    ``path`` is the file, ``where`` the part of it (``"header"``, ``"chunk 3"``,
    ``"index.json splits.train.shards[0]"``...), ``problem`` what is wrong. The message
    reads ``PATH: WHERE: PROBLEM`` so a log line alone is enough to find the damage.
    """

    def __init__(self, path: str | os.PathLike[str], where: str, problem: str) -> None:
        self.path = os.fspath(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.path}: {where}: {problem}")
