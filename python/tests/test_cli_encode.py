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
import re
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


def assert_encode_equals_tiktoken(binary, name, texts, path, threads="1"):
    """`encode --field text` of `texts`, written one JSON line each to `path`, gives
    tiktoken's ids line for line (the first three differences are shown)."""
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    encoding = get_encoding(name)
    result = cli.run(binary, "encode", "--tokenizer", name, "--field", "text", "--threads", threads, str(path))
    got = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(got) == len(texts)
    bad = [(t, g, w) for t, g in zip(texts, got) if g != (w := encoding.encode_ordinary(t))]
    assert not bad, (threads, bad[:3])


@pytest.mark.binary
@pytest.mark.parametrize("name", NAMES)
def test_random_punctuation_spaces_and_scripts_match_tiktoken(tokenmill_bin, name, tmp_path):
    """The scanners' ASCII fast paths (words, numbers, punctuation runs such as `.`, ` (`,
    `?\n`, `//`, a space before a digit) hand everything they cannot decide from ASCII
    bytes alone to the general scanner. 4,000 random texts mixing ASCII punctuation,
    whitespace of every kind, digits, letters of both cases, contractions and non-ASCII
    scalars next to them (accented and CJK letters, full-width and typographic
    punctuation, combining marks, NBSP, NEL, emoji) give tiktoken's ids."""
    import random

    rng = random.Random(18)
    atoms = (
        list(".,:;!?\"'()[]{}<>/\\|@#$%^&*-_=+~`") + [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x00", "\x1f", "\x7f"]
        + list("0123456789") + ["a", "Z", "the", "Hello", "WORLD", "camelCase", "'s", "'LL", "'re", "\u017f"]
        + ["é", "Ünïcode", "北京", "微信", "。", "，", "\u2014", "\u2019", "\u201c", "\u0301", "\u00a0", "\u0085", "\u3000",
           "\u0663", "\u00b2", "😀", "\u200d", "ǅ", "ʰ"]
    )
    texts = ["".join(rng.choice(atoms) for _ in range(rng.randint(1, 24))) for _ in range(4000)]
    assert_encode_equals_tiktoken(tokenmill_bin, name, texts, tmp_path / "random.jsonl")


@pytest.mark.binary
@pytest.mark.parametrize("name", NAMES)
def test_words_of_every_length_and_case_around_the_16_byte_window(tokenmill_bin, name, tmp_path):
    """o200k's word path reads the 16 bytes at a piece's start as letter masks
    (`Scan.o200kWord16`) and hands a word that reaches the window's end to the byte loop.
    Words of 1-40 letters in every case pattern (capitals then small letters, small then
    capitals, all capitals, alternating), after a space, a symbol, a newline or nothing,
    followed by a contraction, a digit, a non-ASCII letter or mark, or the text's end,
    and placed at every distance from the text's end, give tiktoken's ids."""
    import random

    rng = random.Random(20)

    def word(n):
        shape = rng.randrange(5)
        if shape == 0:
            return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
        if shape == 1:
            return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n))
        if shape == 2:
            k = rng.randint(0, n)
            return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(k)) + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n - k))
        if shape == 3:
            k = rng.randint(0, n)
            return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(k)) + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n - k))
        return "".join(rng.choice("aBcDeFgHiJkLmNoP") for _ in range(n))

    before = ["", " ", "(", "\n", "\t", "  ", "$", "'", "\u00e9", "7"]
    after = ["", " ", "'s", "'LL", "'ve", "'x", "7", "\u00e9", "\u0301", "\u4e2d", ".", "\n", "-x", "\u00c9t\u00e9"]
    texts = []
    for n in range(1, 41):
        for _ in range(12):
            t = rng.choice(before) + word(n) + rng.choice(after)
            # At every distance from the text's end: padding after, or none.
            texts.append(t + " " * rng.randint(0, 18) + rng.choice(["", "end", "x" * rng.randint(1, 20)]))
            texts.append(t)
    assert_encode_equals_tiktoken(tokenmill_bin, name, texts, tmp_path / "words.jsonl")


@pytest.mark.binary
@pytest.mark.parametrize("name", NAMES)
def test_merges_of_every_length_around_the_flat_limits(tokenmill_bin, name, tmp_path):
    """The merge keeps up to 16 parts in two vector registers, up to 32 in four
    (`flatMerge32`), and more in a heap. Runs of 1-48 CJK characters (common ones that
    merge with their neighbours and rare ones that do not), of Cyrillic and Greek
    letters, and ASCII runs of 1-48 bytes that few cut points split (letters without
    vowels, base64-like strings, symbol runs), alone and between other text, give
    tiktoken's ids."""
    import random

    rng = random.Random(23)
    han = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单跑尔程"
    rare = "龘齉爨饕餮魑魅魍魉鬻麤靐"
    other = "абвгдежзийклмнопрстуфхцчшщыэюяαβγδεζηθικλμνξοπρστυφχψω"
    def run(n):
        kind = rng.randrange(6)
        if kind == 0:
            return "".join(rng.choice(han) for _ in range(n))
        if kind == 1:
            return "".join(rng.choice(han + rare) for _ in range(n))
        if kind == 2:
            return "".join(rng.choice(other) for _ in range(n))
        if kind == 3:
            return "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))
        if kind == 4:
            return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(n))
        return "".join(rng.choice("!#$%&*+-/<=>@^|~") for _ in range(n))
    texts = []
    for n in range(1, 49):
        for _ in range(10):
            r = run(n)
            texts.append(r)
            texts.append(rng.choice(["", " ", "x ", "。", "\n"]) + r + rng.choice(["", " end", "，", "7"]))
    assert_encode_equals_tiktoken(tokenmill_bin, name, texts, tmp_path / "merges.jsonl")


@pytest.mark.binary
@pytest.mark.parametrize("name", NAMES)
def test_pieces_seen_again_across_texts_give_their_own_ids(tokenmill_bin, name, tmp_path):
    """Pieces of up to 16 bytes that are no token and merge into two are kept by each
    worker from text to text (`PairCache`, 4,096 slots, indexed by hash bits): 12,000
    made-up words of 2-16 letters (and 3-byte characters), most of them no token, and
    3,000 that share their first eight bytes with others, each three times in shuffled lines, so that
    many share a slot and most are met again after being cached, give tiktoken's ids on
    one worker and on two."""
    import random

    rng = random.Random(1120)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    words = set()
    while len(words) < 12000:
        n = rng.randint(2, 16)
        w = "".join(rng.choice(letters) for _ in range(n))
        words.add(rng.choice(["", " ", " ", "("]) + (w if rng.random() < 0.9 else w[: n // 3] + "\u00e9\u4e2d"))
    # Words that share their first eight bytes and length, told apart only by the rest:
    # a long token and a letter or two, which mostly merge into those two tokens.
    for base in (" national", " understand", " different", " political", " important"):
        for _ in range(600):
            words.add(base + "".join(rng.choice(letters) for _ in range(rng.randint(1, 3))))
    pool = list(words) * 3
    rng.shuffle(pool)
    texts = ["".join(pool[k:k + 9]) for k in range(0, len(pool), 9)]
    for threads in ("1", "2"):
        assert_encode_equals_tiktoken(tokenmill_bin, name, texts, tmp_path / "seen.jsonl", threads)


@pytest.mark.binary
@pytest.mark.parametrize("threads", ["1", "2"])
def test_lines_of_many_tokens_beside_short_ones(tokenmill_bin, threads, tmp_path):
    """A chunk's ids stay in the encoder's buffer until the chunk is written
    (`encodeKeeping`): lines of 80,000 and 240,000 tokens, far past the buffer's first
    16,384, between one-token and short lines, give tiktoken's ids line for line, on one
    worker and on two, and so do the same lines through --allowed-special (the path that
    appends to an array instead)."""
    import random

    rng = random.Random(5)
    vocabulary = [w for line in FIXTURE.read_text(encoding="utf-8").split() for w in [line.strip('",[]')] if w]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(n)) for n in (1, 50, 40000, 120000, 3)] + ["", "x"]
    path = tmp_path / "long.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    encoding = get_encoding("o200k_base")
    plain = [encoding.encode_ordinary(t) for t in texts]
    special = [encoding.encode(t, allowed_special={"<|endoftext|>"}, disallowed_special=()) for t in texts]
    assert max(len(w) for w in plain) > 200_000
    for extra, want in (([], plain), (["--allowed-special", "<|endoftext|>"], special)):
        result = cli.run(tokenmill_bin, "encode", "--tokenizer", "o200k_base", "--field", "text", "--threads", threads, *extra, str(path))
        got = [json.loads(line) for line in result.stdout.decode().splitlines()]
        assert got == want, extra


@pytest.mark.binary
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_an_output_that_cannot_be_written_is_an_error(tokenmill_bin, source, tmp_path):
    """Ids that cannot be written (a full disk: /dev/full) end the command with a message
    and a failing exit status; before, the write's error was ignored and `encode` exited
    0 with the output lost."""
    path = tmp_path / "lines.jsonl"
    path.write_text("".join(json.dumps({"text": f"line {k} of text"}) + "\n" for k in range(5000)), encoding="utf-8")
    args = [str(tokenmill_bin), "encode", "--tokenizer", "o200k_base", "--field", "text"]
    with open("/dev/full", "wb") as full:
        if source == "file":
            result = subprocess.run(args + [str(path)], stdout=full, stderr=subprocess.PIPE, timeout=300)
        else:
            result = subprocess.run(args, input=path.read_bytes(), stdout=full, stderr=subprocess.PIPE, timeout=300)
    assert result.returncode == 74, result.returncode
    assert b"No space left on device" in result.stderr, result.stderr


@pytest.mark.binary
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_any_command_whose_output_cannot_be_written_exits_with_the_io_status(tokenmill_bin):
    """Every command's standard output goes through one writer: a failed write ends the
    process with the documented I/O status, 74, as `encode`'s ids do (it was 1)."""
    with open("/dev/full", "wb") as full:
        result = subprocess.run([str(tokenmill_bin), "help"], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert result.returncode == 74, result.returncode
    assert b"<stdout>: cannot write the output: No space left on device" in result.stderr, result.stderr


@pytest.mark.binary
@pytest.mark.parametrize("command", ["encode", "decode", "build", "export", "verify"])
def test_a_command_with_help_prints_the_usage_and_succeeds(tokenmill_bin, command):
    """`tokenmill encode --help` is what a user tries first; it was refused as an unknown
    option (exit 2). It prints the usage, naming the command's own options, and exits 0."""
    for flag in ("--help", "-h"):
        result = subprocess.run([str(tokenmill_bin), command, flag], capture_output=True, timeout=60)
        assert result.returncode == 0, (flag, result.returncode, result.stderr)
        text = result.stdout.decode()
        assert f"tokenmill {command} " in text, text
        assert "exit status:" in text


@pytest.mark.binary
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_the_chunks_before_a_bad_line_are_written(tokenmill_bin, source, tmp_path):
    """A bad line stops `encode` with its line number; the ids of the chunks (~64 KB of
    input each) before the bad line's chunk are on stdout, each line's ids as tiktoken's.
    Output is written 256 KiB at a time, and what was held when the error came must still
    be written (from stdin it was lost: 23,116 of the 30,000 lines instead of 28,158)."""
    texts = [f"line {k} of ordinary text" for k in range(30000)]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts) + "{bad json\n"
                    + "".join(json.dumps({"text": "after"}) + "\n" for _ in range(100)), encoding="utf-8")
    args = [str(tokenmill_bin), "encode", "--tokenizer", "o200k_base", "--field", "text"]
    if source == "file":
        result = subprocess.run(args + [str(path)], capture_output=True, timeout=300)
    else:
        result = subprocess.run(args, input=path.read_bytes(), capture_output=True, timeout=300)
    assert result.returncode != 0
    assert b":30001: invalid JSON" in result.stderr, result.stderr
    got = result.stdout.decode().splitlines()
    # Everything but the bad line's own chunk (~2,700 of these lines) and nothing after it.
    assert 30000 - 4000 <= len(got) < 30000, len(got)
    encoding = get_encoding("o200k_base")
    assert [json.loads(line) for line in got] == [encoding.encode_ordinary(t) for t in texts[:len(got)]]


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


@pytest.mark.binary
def test_encode_streams_in_blocks_with_lines_counted_across_them(tokenmill_bin, tmp_path):
    """Input longer than a block (8 MB) streams through in blocks of whole lines, from a
    file (mapped) and from a pipe (read): the ids equal tiktoken's on every line; a line
    longer than a block is one line; an error on a line of a later block names that
    line's number in the whole input."""
    encoding = get_encoding("cl100k_base")
    words = ["alpha", "beta", "gamma", "δέλτα", "中文", "tokens", "12345", "x!"]
    lines = [" ".join(words[(i * 7 + k) % len(words)] for k in range(3 + i % 29)) for i in range(95_000)]
    long_line = " ".join(words[k % len(words)] + str(k % 97) for k in range(1_100_000))   # ~9 MB, one line
    lines.insert(60_000, long_line)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in lines), encoding="utf-8")
    assert path.stat().st_size > 16 << 20
    want = [encoding.encode_ordinary(t) for t in lines]
    from_file = cli.run(tokenmill_bin, "encode", "--tokenizer", "cl100k_base", "--field", "text", "--threads", "2", str(path))
    from_pipe = cli.run(tokenmill_bin, "encode", "--tokenizer", "cl100k_base", "--field", "text", "-", input=path.read_bytes())
    assert from_file.stdout == from_pipe.stdout
    got = [json.loads(line) for line in from_file.stdout.decode().splitlines()]
    assert len(got) == len(want)
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{len(bad)} lines differ, first {bad[:5]}"
    # A bad row far into the input (a later block): its line number in the whole file.
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"text": "fine"}\n{"text": 17}\n')
    for source in (str(path), "-"):
        run = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", "cl100k_base", "--field", "text", source],
                             input=path.read_bytes() if source == "-" else None, capture_output=True)
        assert run.returncode == 65
        assert f":{len(lines) + 2}: field 'text' is a number, expected a string" in run.stderr.decode(), run.stderr.decode()[-300:]


@pytest.mark.binary
def test_fields_the_scan_passes_over_take_the_full_parser(tokenmill_bin):
    """The in-place field scan hands a line to the full parser when it cannot take it:
    escapes in keys, repeated keys (the first counts, as in the build's readers; Python's
    json keeps the last, so the expected text is written out), invalid UTF-8
    in the string (repaired to U+FFFD), a field in a nested object that is not the one,
    whitespace around the object."""
    rows = [b'{"te\\u0078t": "escaped key"}', b'{"text": "first", "text": "second"}', b'{"text": "bad \xff byte"}',
            b'{"meta": {"text": "inner"}, "text": "outer"}', b'  {"text": "spaced"}  ', b'{"text": "esc\\n\\u00e9\\ud83d\\ude00"}']
    result = cli.run(tokenmill_bin, "encode", "--tokenizer", "cl100k_base", "--field", "text", "-", input=b"\n".join(rows) + b"\n")
    encoding = get_encoding("cl100k_base")
    texts = [json.loads(r.decode("utf-8", errors="replace"))["text"] for r in rows]
    texts[1] = "first"
    assert [json.loads(line) for line in result.stdout.decode().splitlines()] == [encoding.encode_ordinary(t) for t in texts]


@pytest.mark.binary
@pytest.mark.parametrize("source", ["file", "pipe"])
def test_lines_read_in_one_pass_and_the_shapes_beside_them(tokenmill_bin, source, tmp_path):
    """A line of the shape JSON-lines writers produce (`{"text": "..."}` or
    `{"text":"..."}`) is read in one pass that also finds its end; every near miss goes to
    the general scan and gives the same ids: `\r\n` endings, a space before the `}` or
    after it, a longer key with the same start, another member, an empty string, an empty
    line's error aside (none here), non-ASCII text, invalid UTF-8 (repaired), a last line
    without `\n`, lines longer than the 32-byte steps and shorter."""
    rows = [b'{"text": "plain"}', b'{"text":"no space"}', b'{"text": "crlf"}\r', b'{"text": "space before" }',
            b'{"text": "space after"} ', b'{"textx": "x", "text": "longer key first"}', b'{"text": ""}',
            b'{"text": "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 and more than thirty-two bytes of text"}',
            b'{"text": "bad \xff byte in a line long enough for the vector steps"}', b'{"text": "\xe2\x82"}',
            b'{"text": "x" , "n": 1}', b'{"text":  "two spaces"}', b'{"text": "' + b"long " * 40 + b'"}',
            b'{"text": "last line without a newline"}']
    data = b"\n".join(rows)
    encoding = get_encoding("o200k_base")
    texts = [json.loads(r.decode("utf-8", errors="replace"))["text"] for r in rows]
    args = [tokenmill_bin, "encode", "--tokenizer", "o200k_base", "--field", "text"]
    if source == "file":
        path = tmp_path / "rows.jsonl"
        path.write_bytes(data)
        result = cli.run(*args, str(path))
    else:
        result = cli.run(*args, "-", input=data)
    assert [json.loads(line) for line in result.stdout.decode().splitlines()] == [encoding.encode_ordinary(t) for t in texts]


@pytest.mark.binary
def test_a_file_with_every_non_ascii_character_escaped_gives_the_same_ids(tokenmill_bin, tmp_path):
    """Python's json.dumps escapes every non-ASCII character by default (`\\u4e2d`, and a
    character beyond the BMP as a surrogate pair): such a file decodes, run of escapes
    by run, to the texts Python's json reads back, and encodes as tiktoken encodes them."""
    rng = np.random.default_rng(7)
    alphabet = list("abc XYZ 123,.!?\n\t\"\\/") + list("éàüßçñ") + list("中文字符测试") + list("русский") + \
        ["😀", "🎉", "𝕏", "\u0000", "\u07ff", "\u0800", "\uffff", "\U0010ffff"]
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 80)))) for _ in range(3000)]
    path = tmp_path / "escaped.jsonl"
    assert_encode_equals_tiktoken(tokenmill_bin, "o200k_base", texts, path)
    # The helper writes each text with json.dumps's defaults: the escapes are there.
    assert "\\u4e2d" in path.read_text() and "\\ud83d\\ude00" in path.read_text()


@pytest.mark.binary
def test_the_vocabulary_cache_is_used_rebuilt_when_damaged_and_can_be_off(tokenmill_bin, tmp_path):
    """The first load of a vocabulary writes its compiled tables into TOKENMILL_CACHE_DIR;
    later loads read them and give the same ids; a damaged image is rebuilt (the ids stay
    right); `off` writes nothing."""
    cache = tmp_path / "cache"
    payload = "".join(json.dumps({"text": t}) + "\n" for t in ["Hello world", "中文 text 123", "  spaces\tand tabs"]).encode()
    want = [get_encoding("o200k_base").encode_ordinary(json.loads(l)["text"]) for l in payload.decode().splitlines()]

    def encode(cache_dir):
        env = dict(os.environ, TOKENMILL_CACHE_DIR=str(cache_dir))
        run = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", "o200k_base", "--field", "text", "-"], input=payload,
                             capture_output=True, env=env, check=True)
        return [json.loads(l) for l in run.stdout.decode().splitlines()]

    assert encode(cache) == want
    images = list(cache.glob("ranks-*.tmrt"))
    assert len(images) == 1 and images[0].stat().st_size > 10 << 20
    original = images[0].read_bytes()
    assert encode(cache) == want
    damaged = bytearray(original)
    damaged[len(damaged) // 3] ^= 0x01
    images[0].write_bytes(bytes(damaged))
    assert encode(cache) == want
    assert images[0].read_bytes() == original, "a damaged image is rebuilt as it was"
    assert encode("off") == want
    assert not (tmp_path / "off").exists() and len(list(cache.iterdir())) == 1


@pytest.mark.binary
def test_a_rewritten_tokenizer_json_never_reuses_the_old_tables(tokenmill_bin, tmp_path):
    """The cache keys a tokenizer.json by its bytes: the same file rewritten at once with
    two tokens' ids swapped (same size, same name, likely the same mtime) gives the new
    ids, as `tokenizers` does, and leaves an image of its own."""
    import tokenizers
    from hf_convert import build
    path = Path(build("gpt2", str(tmp_path)))
    cache = tmp_path / "cache"
    texts = ["the quick brown fox and the lazy dog", "and then the end"]
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()

    def encode():
        run = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", str(path), "--field", "text", "-"], input=payload,
                             capture_output=True, env=dict(os.environ, TOKENMILL_CACHE_DIR=str(cache)), check=True)
        return [json.loads(l) for l in run.stdout.decode().splitlines()]

    def reference():
        hf = tokenizers.Tokenizer.from_file(str(path))
        return [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]

    assert encode() == reference()
    # Swap the ids of two vocabulary entries in the text itself: the same bytes but four digits.
    text = path.read_text(encoding="utf-8")
    vocab = json.loads(text)["model"]["vocab"]
    a, b = "\u0120the", "\u0120and"
    ka, kb = json.dumps(a, ensure_ascii=False)[1:-1], json.dumps(b, ensure_ascii=False)[1:-1]
    assert len(str(vocab[a])) == len(str(vocab[b]))
    ea, eb = re.search(f'"{re.escape(ka)}": ?{vocab[a]}\\b', text), re.search(f'"{re.escape(kb)}": ?{vocab[b]}\\b', text)
    assert ea and eb
    swapped = {ea.group(0): ea.group(0).replace(str(vocab[a]), str(vocab[b])), eb.group(0): eb.group(0).replace(str(vocab[b]), str(vocab[a]))}
    new = re.sub("|".join(re.escape(k) for k in swapped), lambda m: swapped[m.group(0)], text)
    before = path.stat().st_size
    path.write_text(new, encoding="utf-8")
    assert path.stat().st_size == before
    got = encode()
    assert got == reference()
    assert len(list(cache.glob("ranks-*.tmrt"))) == 2, "the rewritten file has an image of its own"
