"""Special tokens enter only through templates or --allowed-special: text that looks like
one is ordinary text by default, and with --allowed-special the ids equal tiktoken's
encode(text, allowed_special=...)."""
import json
import subprocess

import pytest

from tiktoken_offline import get_encoding

TEXTS = [
    "a<|endoftext|>b<|endofprompt|><|im_start|>",
    "<|endoftext|><|endoftext|>",
    "x <|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "<|endoftext",
    "no specials here",
    "",
]


def run(binary, name, texts, allowed=None):
    cmd = [str(binary), "encode", "--tokenizer", name, "--field", "text"]
    if allowed is not None:
        cmd += ["--allowed-special", allowed]
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
    out = subprocess.run(cmd, input=payload, capture_output=True, check=True)
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


@pytest.mark.binary
@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "o200k_base"])
def test_specials_are_text_unless_allowed(name, tokenmill_bin):
    enc = get_encoding(name)
    assert run(tokenmill_bin, name, TEXTS) == [enc.encode_ordinary(t) for t in TEXTS]
    assert run(tokenmill_bin, name, TEXTS, "all") == [enc.encode(t, allowed_special="all") for t in TEXTS]
    assert run(tokenmill_bin, name, TEXTS, "<|endoftext|>") == [
        enc.encode(t, allowed_special={"<|endoftext|>"}, disallowed_special=()) for t in TEXTS]


@pytest.mark.binary
def test_unknown_allowed_special_is_a_usage_error(tokenmill_bin):
    r = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", "gpt2", "--allowed-special", "<|im_start|>"],
                       input=b"x\n", capture_output=True)
    assert r.returncode == 2 and r.stdout == b"" and "<|im_start|>" in r.stderr.decode()
