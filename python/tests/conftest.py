"""Shared fixtures: where the repository, the tokenmill binary and the shared data are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The binaries keep compiled vocabularies in a cache (docs/BPE.md, "The compiled-vocabulary
# cache"); under the tests it lives in the repository's ignored build folder, not in the
# user's home. A test that needs another (or none) sets TOKENMILL_CACHE_DIR itself.
os.environ.setdefault("TOKENMILL_CACHE_DIR", str(REPO / "build" / "test-cache" / "vocab"))


def tokenmill_binary() -> Path:
    """``$TOKENMILL_BIN``, else ``<repo>/.build/release/tokenmill``."""
    return Path(os.environ.get("TOKENMILL_BIN", REPO / ".build" / "release" / "tokenmill"))


@pytest.fixture(scope="session")
def tokenmill_bin() -> Path:
    path = tokenmill_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(
            f"tokenmill binary not found at {path}: run `swift build -c release` "
            "or set TOKENMILL_BIN to the executable"
        )
    return path


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
