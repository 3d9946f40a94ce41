"""Every Unicode code point, in contexts that exercise each pre-tokenizer class test
(letters, numbers, marks, whitespace, contractions, case), encodes to tiktoken's ids.

This pins the Unicode version of the character tables: the Rust regex crate behind
tiktoken follows Unicode 16.0 while Swift's standard library follows 17.0; a table built
from the wrong version fails here on ~4,700 code points.
"""
import json
import subprocess

import pytest

from tiktoken_offline import get_encoding


def contexts(cp: int) -> str:
    c = chr(cp)
    return f"a{c}b {c}{c}1{c} A{c}'s\n{c} \t{c}"


@pytest.mark.binary
@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "o200k_base"])
def test_every_code_point_matches_tiktoken(name, tokenmill_bin):
    enc = get_encoding(name)
    # One text per block of 256 code points keeps the run short; a failing block is then
    # narrowed down to its code points.
    blocks = [[cp for cp in range(hi << 8, (hi + 1) << 8) if not 0xD800 <= cp < 0xE000] for hi in range(0x1100)]
    blocks = [b for b in blocks if b]
    texts = ["\n".join(contexts(cp) for cp in b) for b in blocks]
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
    out = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", name, "--field", "text"],
                         input=payload, capture_output=True, check=True)
    got = out.stdout.decode().splitlines()
    want = enc.encode_ordinary_batch(texts, num_threads=2)
    assert len(got) == len(texts)
    bad = [b for b, g, w in zip(blocks, got, want) if json.loads(g) != w]
    if bad:
        singles = [contexts(cp) for cp in bad[0]]
        payload = "".join(json.dumps({"text": t}) + "\n" for t in singles).encode()
        out = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", name, "--field", "text"],
                             input=payload, capture_output=True, check=True)
        first = [cp for cp, g, t in zip(bad[0], out.stdout.decode().splitlines(), singles)
                 if json.loads(g) != enc.encode_ordinary(t)]
        pytest.fail(f"{len(bad)} blocks of code points differ from tiktoken; first code points: "
                    + ", ".join(f"U+{cp:04X}" for cp in first[:10]))
