"""``tokenmill encode`` gives tiktoken's ``encode_ordinary`` ids, exactly, on real and adversarial text.

The big test feeds every distinct string of ``<repo>/../shared/data`` (about 100 MB) as
JSONL through ``encode --field text`` and compares line by line with tiktoken, computed
meanwhile in worker processes (tiktoken's own thread pool was measured slower than a
plain loop per process here). Output lines are compared as bytes after dropping spaces,
so only a mismatch pays for JSON parsing; memory stays bounded by a window of batches.
Hashes of tiktoken's answers are cached under ``build/test-cache`` (see cache_path), so
a second run costs only tokenmill's time.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import time
import warnings
from collections import deque
from pathlib import Path

import cli
import numpy as np
import pytest
import xxhash
from shared_texts import collect, shared_data_dir
from tiktoken_offline import NAMES, REPO, get_encoding

FIXTURE = REPO / "Tests" / "BPETests" / "Fixtures" / "tiktoken_cases.json"
BATCH_BYTES = 1 << 20
WINDOW = 8

_TEXTS: list[str] = []  # inherited by forked workers, so batches travel as index ranges
_ENCODING = None


def _init_worker(name: str) -> None:
    global _ENCODING
    _ENCODING = get_encoding(name)


def _encode_range(start: int, end: int) -> list[bytes]:
    return [
        json.dumps(_ENCODING.encode_ordinary(text), separators=(",", ":")).encode()
        for text in _TEXTS[start:end]
    ]


def _batches(texts: list[str]) -> list[tuple[int, int]]:
    out, start, size = [], 0, 0
    for k, text in enumerate(texts):
        size += len(text) + 16
        if size >= BATCH_BYTES:
            out.append((start, k + 1))
            start, size = k + 1, 0
    if start < len(texts):
        out.append((start, len(texts)))
    return out


def first_difference(text: str, got: list[int], want: list[int], name: str, line: int) -> str:
    k = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    encoding = get_encoding(name)
    around = encoding.decode(want[max(0, k - 3) : k + 3])
    return (
        f"{name}: line {line} differs from tiktoken at token {k}\n"
        f"  text ({len(text)} chars): {text[:200]!r}{' ...' if len(text) > 200 else ''}\n"
        f"  around the difference: {around!r}\n"
        f"  tokenmill: {got[max(0, k - 5) : k + 10]} ({len(got)} ids)\n"
        f"  tiktoken:  {want[max(0, k - 5) : k + 10]} ({len(want)} ids)"
    )


def cache_path(name: str, jsonl: Path) -> Path:
    """Where the hashes of tiktoken's answers for this input are kept between runs.

    tiktoken is most of this test's time (about 30 s an encoding here, against 10 s for
    tokenmill), and its answers depend only on the input bytes, the encoding and the
    tiktoken version, which together name the file. Hashes (8 bytes a line) rather than
    ids keep the cache at a few MB; a mismatch recomputes that one line for the report.
    """
    import tiktoken

    key = xxhash.xxh3_64_hexdigest(jsonl.read_bytes())
    folder = Path(os.environ.get("TOKENMILL_TEST_CACHE", REPO / "build" / "test-cache"))
    return folder / f"tiktoken-{tiktoken.__version__}-{name}-{key}.u64"


def _tiktoken_lines(name: str, texts: list[str]):
    """tiktoken's output line for every text, in order, from two forked worker processes."""
    global _TEXTS
    _TEXTS = texts
    context = multiprocessing.get_context("fork")
    with context.Pool(2, initializer=_init_worker, initargs=(name,)) as pool:
        batches = iter(_batches(texts))
        pending = deque(pool.apply_async(_encode_range, b) for _, b in zip(range(WINDOW), batches))
        while pending:
            wanted = pending.popleft().get()
            following = next(batches, None)
            if following is not None:
                pending.append(pool.apply_async(_encode_range, following))
            yield from wanted


def compare_encode(
    binary: Path, name: str, texts: list[str], jsonl: Path, stderr_path: Path, cache: Path | None = None
) -> None:
    """Run ``encode --field text`` over ``jsonl`` (one line per text) and compare with tiktoken."""
    cached = np.fromfile(cache, dtype="<u8") if cache is not None and cache.is_file() else None
    if cached is not None and len(cached) != len(texts):
        cached = None
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [str(binary), "encode", "--tokenizer", name, "--field", "text", str(jsonl)],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    problem = None
    hashes = []
    expected = None
    try:
        if cached is not None:
            expected = (int(h) for h in cached)
        else:
            expected = _tiktoken_lines(name, texts)
        for line, want in enumerate(expected):
            got = process.stdout.readline()
            if not got:
                problem = f"{name}: encode output ended after {line} of {len(texts)} lines"
                break
            got = got.rstrip(b"\r\n").replace(b" ", b"")
            if cached is not None:
                if xxhash.xxh3_64_intdigest(got) == want:
                    continue
                want = json.dumps(
                    get_encoding(name).encode_ordinary(texts[line]), separators=(",", ":")
                ).encode()
            if got != want:
                problem = first_difference(texts[line], json.loads(got), json.loads(want), name, line + 1)
                break
            hashes.append(xxhash.xxh3_64_intdigest(want))
        if problem is None:
            extra = process.stdout.read(200)
            if extra:
                problem = f"{name}: encode printed more lines than inputs: {extra!r}"
    finally:
        if hasattr(expected, "close"):
            expected.close()  # stops the worker pool now, not at garbage collection
        if problem is not None:
            process.kill()
        process.stdout.close()
        code = process.wait()
    if code != 0 and (problem is None or "ended after" in problem):
        problem = (
            f"{problem or name}; encode exited {code}: {stderr_path.read_text(errors='replace')[-2000:]}"
        )
    assert problem is None, problem
    if cache is not None and cached is None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(f".tmp{os.getpid()}")
        np.array(hashes, dtype="<u8").tofile(temporary)
        os.replace(temporary, cache)


@pytest.fixture(scope="module")
def shared_texts_jsonl(tmp_path_factory):
    root = shared_data_dir()
    if root is None:
        pytest.skip(
            "../shared/data (next to the repository) is absent: the exactness test over real data is skipped"
        )
    collected = collect(root)
    for skipped in collected.skipped:
        warnings.warn(f"exactness test skips {skipped}", stacklevel=2)
    path = tmp_path_factory.mktemp("encode") / "texts.jsonl"
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        for text in collected.texts:
            file.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return collected.texts, path


@pytest.mark.binary
@pytest.mark.shared_data
@pytest.mark.parametrize("name", NAMES)
def test_encode_equals_tiktoken_on_every_shared_text(tokenmill_bin, shared_texts_jsonl, name, tmp_path):
    texts, path = shared_texts_jsonl
    started = time.monotonic()
    compare_encode(tokenmill_bin, name, texts, path, tmp_path / "stderr.txt", cache_path(name, path))
    print(f"{name}: {len(texts)} texts equal in {time.monotonic() - started:.1f}s")


@pytest.mark.binary
@pytest.mark.parametrize("name", NAMES)
def test_encode_equals_tiktoken_on_the_adversarial_fixture(tokenmill_bin, name, tmp_path):
    texts = json.loads(FIXTURE.read_text(encoding="utf-8"))["texts"]
    path = tmp_path / "cases.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8"
    )
    compare_encode(tokenmill_bin, name, texts, path, tmp_path / "stderr.txt")


@pytest.mark.binary
def test_plain_line_mode_splits_at_newline_only(tokenmill_bin):
    lines = ["hello world", "", "a\rb", "tab\tend ", "x\u2028y\u0085z", "<|endoftext|> stays text", "  "]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    result = cli.run(tokenmill_bin, "encode", "--tokenizer", "cl100k_base", "-", input=data)
    got = [json.loads(line) for line in result.stdout.decode().splitlines()]
    encoding = get_encoding("cl100k_base")
    assert got == [encoding.encode_ordinary(line) for line in lines]


def test_fixture_matches_tiktoken():
    """The Swift tests' oracle is current: regenerate it with make_tiktoken_cases.py if not."""
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert len(fixture["texts"]) >= 300
    assert FIXTURE.stat().st_size < 1_500_000
    for name in NAMES:
        encoding = get_encoding(name)
        assert fixture[name] == [encoding.encode_ordinary(t) for t in fixture["texts"]], name
