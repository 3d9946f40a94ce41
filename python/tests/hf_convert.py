"""Build Hugging Face tokenizer.json files from the repository's tiktoken ranks, with the
`tokenizers` library itself (so the files are what that library writes and reads).

Merges are recovered the way transformers' TikTokenConverter does: every split of a token
into two tokens is a merge, ordered by the merged token's rank, then by the ranks of the
two halves. The pre-tokenizer is GPT-2's ByteLevel regex for gpt2, and for cl100k/o200k a
Split on the encoding's pattern followed by ByteLevel without regex (the Llama-3/Qwen
layout); cl100k's `\\p{N}{1,3}+` loses its possessive `+`, which Oniguruma misreads.
"""
from __future__ import annotations

import functools
import os
import re

from tiktoken_offline import constructor_args


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()


def as_string(b: bytes) -> str:
    return "".join(BYTE_ENCODER[x] for x in b)


@functools.cache
def vocab_and_merges(name: str):
    ranks = constructor_args(name)["mergeable_ranks"]
    vocab = {as_string(t): r for t, r in ranks.items()}
    merges = []
    for token, rank in ranks.items():
        if len(token) == 1:
            continue
        local = [(token[:k], token[k:], rank) for k in range(1, len(token)) if token[:k] in ranks and token[k:] in ranks]
        local.sort(key=lambda x: (ranks[x[0]], ranks[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda x: x[2])
    return vocab, [(as_string(a), as_string(b)) for a, b, _ in merges]


LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")


def build(name: str, out_dir: str, nfc: bool = False, ignore_merges: bool = False, extra_pre=None, nfkc: bool = False,
          pattern: str | None = None, tag: str = "") -> str:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab, merges = vocab_and_merges(name)
    tok = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges), ignore_merges=ignore_merges))
    if name in ("gpt2", "p50k_base"):
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        pattern = pattern or re.sub(r"(\{\d+(?:,\d*)?\})\+", r"\1", constructor_args(name)["pat_str"])
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    if extra_pre is not None:
        tok.pre_tokenizer = extra_pre
    if nfc:
        tok.normalizer = normalizers.NFC()
    if nfkc:
        tok.normalizer = normalizers.Sequence([normalizers.NFKC()])
    tok.decoder = decoders.ByteLevel()
    special = constructor_args(name)["special_tokens"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in sorted(special, key=special.get)])
    suffix = tag + ("-nfc" if nfc else "") + ("-nfkc" if nfkc else "") + ("-ignore-merges" if ignore_merges else "")
    path = os.path.join(out_dir, f"{name}{suffix}.tokenizer.json")
    tok.save(path)
    return path
