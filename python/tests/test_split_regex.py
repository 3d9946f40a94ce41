"""The general pre-tokenization path of tokenizer.json files: any `Split` regex (the
engine follows Oniguruma, which `tokenizers` uses), every split behaviour and `invert`,
`Digits`, ByteLevel after a Split, `add_prefix_space` on every piece, and non-special
added tokens — ids equal `tokenizers`' `encode(text, add_special_tokens=False)`."""
from __future__ import annotations

import copy
import json
import random

import pytest

tokenizers = pytest.importorskip("tokenizers")

from hf_convert import LLAMA3, build  # noqa: E402
from test_tokenizer_json import encode_with_tokenmill, fixture_texts, refusal, sample_shared  # noqa: E402

DEEPSEEK_V3 = [
    r"\p{N}{1,3}",
    r"[一-龥぀-ゟ゠-ヿ]+",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
]

ADVERSARIAL = [
    "1234567890123 12 1.5e10 ٣٤٥٦ ⅫⅦ ½¾", " " * 3000 + "x", "\n\n\n  \t \r\n x", "a" * 5000, "ǅungla ΣΑΣ ſtop Kelvin K",
    "Hello, World! It's I'M we'll THEY'RE", "中文字符和日本語のテキスト。カタカナ、ひらがな", "e\u0301\u0301 a\u0308 \u212b",
    "tabs\tand\u3000ideographic\u00a0spaces", "mixed123abc___def  --  !!", "😀👍🏽 family 👨‍👩‍👧", "<think>x</think> <tool_call>",
    "x<think>  y  <think>z", "foo_bar baz-qux", "", " ", "\n",
]


def step_split(pattern, behavior="Isolated", invert=False, string=False):
    return {"type": "Split", "pattern": {"String" if string else "Regex": pattern}, "behavior": behavior, "invert": invert}


def byte_level(prefix=False, regex=False):
    return {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True, "use_regex": regex}


def seq(*steps):
    return {"type": "Sequence", "pretokenizers": list(steps)}


PRE_TOKENIZERS = {
    "deepseek-v3": seq(*[step_split(p) for p in DEEPSEEK_V3], byte_level()),
    "llama3-general": seq(step_split("(?:)" + LLAMA3), byte_level()),
    "llama3-prefix-every-piece": seq(step_split(LLAMA3), byte_level(prefix=True)),
    "split-then-bytelevel-regex": seq(step_split(r"\n+"), byte_level(regex=True)),
    "removed": seq(step_split(r"\s+", "Removed"), byte_level()),
    "merged-previous": seq(step_split(r"[.,!?;:]", "MergedWithPrevious"), byte_level(regex=True)),
    "merged-next": seq(step_split(" ", "MergedWithNext", string=True), byte_level()),
    "contiguous": seq(step_split(r"\p{P}", "Contiguous"), byte_level()),
    "invert": seq(step_split(r"\p{L}+|\p{N}+", "Removed", invert=True), byte_level()),
    "digits-individual": seq({"type": "Digits", "individual_digits": True}, byte_level(regex=True)),
    "digits-runs": seq({"type": "Digits", "individual_digits": False}, byte_level(prefix=True, regex=True)),
    "regex-features": seq(step_split(r"(?i:the|and)\b|^\s+|\s+$|\w+?(?=\d)|(?>\d+)\.|\h{2,4}|[\w&&[^_]]+|\p{^L}{1,2}+|a(?i)b|c|."), byte_level()),
    "lazy-and-intervals": seq(step_split(r"\p{L}{2,3}?|\p{N}{2}|\s{,2}?\S|[^\x{41}-\u005A]"), byte_level()),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("split")
    return json.load(open(build("gpt2", str(out)))), out


def variant(base, pre_tokenizer=None, added=(), normalizer=None, name="t"):
    d, out = base
    d = copy.deepcopy(d)
    if pre_tokenizer is not None:
        d["pre_tokenizer"] = pre_tokenizer
    if normalizer is not None:
        d["normalizer"] = normalizer
    # tokenizers gives an added token the next free id whatever the file says; so do files.
    next_id = 1 + max(max(d["model"]["vocab"].values()), *(t["id"] for t in d["added_tokens"]))
    for k, (content, opts) in enumerate(added):
        d["added_tokens"].append({"id": next_id + k, "content": content, "single_word": False, "lstrip": False,
                                  "rstrip": False, "normalized": True, "special": False, **opts})
    path = out / f"{name}.tokenizer.json"
    path.write_text(json.dumps(d))
    return str(path)


def hf_ids(path, texts):
    hf = tokenizers.Tokenizer.from_file(path)
    hf.encode_special_tokens = True
    return [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]


def assert_same(path, texts, tokenmill_bin):
    got = encode_with_tokenmill(tokenmill_bin, path, texts)
    want = hf_ids(path, texts)
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first {bad[0][0][:80]!r}: {bad[0][1][:16]} vs {bad[0][2][:16]}"


@pytest.fixture(scope="module")
def texts(repo):
    return fixture_texts(repo) + sample_shared(300_000) + ADVERSARIAL


@pytest.mark.binary
@pytest.mark.parametrize("name", sorted(PRE_TOKENIZERS))
def test_pre_tokenizer_steps_equal_hf(name, base, texts, tokenmill_bin):
    assert_same(variant(base, PRE_TOKENIZERS[name], name=name), texts, tokenmill_bin)


def code_point_texts(step=1):
    cps = [cp for cp in range(0, 0x110000, step) if not 0xD800 <= cp < 0xE000]
    blocks = [cps[i:i + 256] for i in range(0, len(cps), 256)]
    return ["".join(f"{chr(c)}a{chr(c)} 1{chr(c)}{chr(c)}'S{chr(c)}\n " for c in b) for b in blocks]


@pytest.mark.binary
@pytest.mark.parametrize("name,pattern", [
    ("word", r"\w"),
    ("classes", r"\w+|\d+|\s+|\h+|\p{P}+|\p{S}+|\p{M}+|\p{Lu}\p{Ll}*|(?i:[a-f]+|k|s)|\p{C}|\p{Z}"),
])
def test_every_code_point_in_context(name, pattern, base, tokenmill_bin):
    """Every code point (256 to a text, next to letters, digits, quotes and spaces) through
    a general-path pattern: the Unicode classes and case folding agree with Oniguruma."""
    # Removed + invert keeps exactly the matches, so a class differing on one scalar shows.
    path = variant(base, seq(step_split(pattern, "Removed", invert=True), byte_level()), name="cp-" + name)
    texts = code_point_texts()
    got = encode_with_tokenmill(tokenmill_bin, path, texts)
    want = hf_ids(path, texts)
    bad = [k for k, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{len(bad)} blocks differ, first starts at U+{bad[0] * 256:04X}"


@pytest.mark.binary
def test_random_patterns_from_pieces(base, texts, tokenmill_bin):
    """Patterns assembled at random from the constructs the engine claims to support."""
    atoms = [r"\p{L}", r"\p{N}", r"\s", r"\S", r"[^\s\p{L}]", r"[a-z]", r"(?i:[a-z])", r"\d", r"\w", r"'", r"\.", r".",
             r"[\r\n]", r"(?:ab|a)", r"\p{Lu}", r"[\p{P}\p{S}]"]
    quants = ["", "+", "*", "?", "{1,3}", "++", "*+", "+?", "{2}", "{1,3}+"]
    rng = random.Random(11)
    # Short texts only: random patterns can backtrack polynomially (in Oniguruma too) on
    # the 5,000-letter adversarial strings.
    sample = [t for t in texts[:600] + ADVERSARIAL if len(t) <= 300]
    for k in range(12):
        branches = []
        for _ in range(rng.randint(1, 4)):
            parts = [rng.choice(atoms) + rng.choice(quants) for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.3:
                parts.append(rng.choice([r"(?!\S)", r"(?=\s)", r"$", r"\b"]))
            branches.append("".join(parts))
        pattern = "|".join(branches)
        behavior = rng.choice(["Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"])
        path = variant(base, seq(step_split(pattern, behavior, invert=rng.random() < 0.3), byte_level()), name=f"rand{k}")
        try:
            assert_same(path, sample, tokenmill_bin)
        except AssertionError as e:
            raise AssertionError(f"pattern {pattern!r} {behavior}: {e}") from None


@pytest.mark.binary
def test_non_special_added_tokens_are_matched_like_hf(base, texts, tokenmill_bin):
    added = [("<think>", {}), ("</think>", {"normalized": False}), ("<tool_call>", {"lstrip": True, "rstrip": True}),
             ("<th", {}), ("ﬁ", {}), ("hello world", {"rstrip": True})]
    for normalizer, llama in [(None, False), ({"type": "NFKC"}, True)]:
        pre = seq(step_split(LLAMA3), byte_level()) if llama else None
        path = variant(base, pre, added=added, normalizer=normalizer, name=f"added-{llama}")
        extra = ["<think>hi</think>", "a <tool_call>  b", "  <tool_call>\n", "fi ﬁ ﬁx", "hello world  !", "<th<think>",
                 "<thinking>", "x</think>y", "ＨＥＬＬＯ <think>"]
        assert_same(path, texts[:500] + ADVERSARIAL + extra, tokenmill_bin)


@pytest.mark.binary
@pytest.mark.parametrize("after", [
    [{"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Isolated", "invert": False}],
    [{"type": "Digits", "individual_digits": False}, {"type": "Split", "pattern": {"Regex": "[0-9][0-9][0-9]"}, "behavior": "Isolated", "invert": False}],
    [{"type": "Digits", "individual_digits": True}],
    [{"type": "Split", "pattern": {"Regex": "Ġ"}, "behavior": "MergedWithNext", "invert": False}],
])
def test_steps_after_byte_level_see_its_alphabet(after, base, texts, tokenmill_bin):
    """Steps after ByteLevel (as Falcon has them) split the byte-level alphabet's text, as
    `tokenizers` does: a space is `Ġ` there, and the continuation byte 0xB2 of `²` is a digit."""
    pre = {"type": "Sequence", "pretokenizers": [byte_level(regex=True)] + after}
    extra = ["x² + y³ = ¼", "a a a  banana", "12345 678 ²³¹", "Ġ literally", "x\u00b2"]
    assert_same(variant(base, pre, name=f"after-{len(after)}-{after[0]['type']}"), texts[:400] + extra, tokenmill_bin)


@pytest.mark.binary
def test_added_tokens_decode_to_their_text(base, tokenmill_bin):
    import subprocess
    path = variant(base, None, added=[("<think>", {})], name="added-decode")
    ids = encode_with_tokenmill(tokenmill_bin, path, ["a<think>b"])[0]
    assert 50257 in ids
    out = subprocess.run([str(tokenmill_bin), "decode", "--tokenizer", path], input=(json.dumps(ids) + "\n").encode(),
                         capture_output=True, check=True)
    assert out.stdout.decode().rstrip("\n") == "a<think>b"


@pytest.mark.binary
@pytest.mark.parametrize("pre,added,component", [
    (step_split("(?<=a)b"), None, "look-behind"),
    (step_split(r"(a)\1"), None, "backreference"),
    (step_split("[[:alpha:]]+"), None, "POSIX"),
    (step_split("(?m:a.b)"), None, "flag"),
    (step_split("(?i)ß"), None, "folds to several"),
    (step_split(r"(?:a?)*"), None, "empty string"),
    (step_split(r"\p{Han}"), None, "Han"),
    (seq(step_split("a")), None, "ByteLevel must appear once"),
    (seq(byte_level(), step_split("a"), byte_level()), None, "ByteLevel must appear once"),
    ({"type": "Whitespace"}, None, "pre_tokenizer Whitespace"),
    # (single_word added tokens are read now: test_tokenizer_json.py checks them against tokenizers.)
])
def test_what_cannot_be_exact_is_refused(pre, added, component, base, tokenmill_bin, tmp_path):
    path = variant(base, pre, added=[("zz", added)] if added else (), name="refuse")
    code, out, err = refusal(tokenmill_bin, path)
    assert code == 2 and out == b"" and len(err) == 1 and component in err[0], err
