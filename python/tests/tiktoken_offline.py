"""tiktoken encodings built from the repository's own ranks files, with no network.

The tests must run from a fresh clone, so they read ``Sources/BPE/Resources/*.tiktoken``
(the files the Swift tool embeds), never ``../shared/vocab``. tiktoken's own constructors
in ``tiktoken_ext.openai_public`` supply the split pattern and special tokens; only the
loading of the ranks is replaced, and each file is still checked against the sha256
tiktoken expects. The ranks are parsed here rather than by ``tiktoken.load`` because
that function also copies every file it reads into a cache folder under /tmp.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path

import tiktoken
import tiktoken_ext.openai_public as openai_public

REPO = Path(__file__).resolve().parents[2]
RESOURCES = REPO / "Sources" / "BPE" / "Resources"
FILES = {
    "gpt2": "gpt2.tiktoken",
    "r50k_base": "gpt2.tiktoken",
    "p50k_base": "p50k_base.tiktoken",
    "cl100k_base": "cl100k_base.tiktoken",
    "o200k_base": "o200k_base.tiktoken",
}
NAMES = ("gpt2", "p50k_base", "cl100k_base", "o200k_base")


def _load_ranks(path: Path, expected_hash: str | None) -> dict[bytes, int]:
    data = path.read_bytes()
    if expected_hash is not None and hashlib.sha256(data).hexdigest() != expected_hash:
        raise ValueError(f"{path}: sha256 differs from the one tiktoken expects ({expected_hash})")
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def constructor_args(name: str) -> dict:
    """The keyword arguments of ``tiktoken.Encoding`` for ``name``, ranks from the repo."""
    if name not in FILES:
        raise ValueError(f"unknown encoding {name!r}; one of {sorted(FILES)}")
    path = RESOURCES / FILES[name]
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda _url, expected_hash=None: _load_ranks(path, expected_hash)
    try:
        # gpt2() reads the older vocab.bpe/encoder.json pair; r50k_base has the same ranks.
        spec = getattr(openai_public, "r50k_base" if name == "gpt2" else name)()
    finally:
        openai_public.load_tiktoken_bpe = original
    spec["name"] = name
    return spec


@functools.cache
def get_encoding(name: str, extra_special: tuple[tuple[str, int], ...] = ()) -> tiktoken.Encoding:
    """The encoding ``name``, plus ``extra_special`` tokens (e.g. chatml's ``<|im_start|>``)."""
    spec = dict(constructor_args(name))
    if extra_special:
        spec["special_tokens"] = {**spec["special_tokens"], **dict(extra_special)}
        spec.pop("explicit_n_vocab", None)
    return tiktoken.Encoding(**spec)


def ranks_path(name: str) -> str:
    """Path of the repository's ranks file for ``name`` (for peers that load it themselves)."""
    return str(RESOURCES / FILES[name])
