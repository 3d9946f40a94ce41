#!/usr/bin/env python3
"""Rebuild tiktoken_cases.json: tiktoken's own ids for adversarial strings, the BPE oracle.

    python3 Tests/BPETests/Fixtures/make_tiktoken_cases.py      (from the repo root; needs tiktoken)

The fixture is ``{"texts": [...], "gpt2": [[ids]...], "p50k_base": ..., "cl100k_base": ...,
"o200k_base": ...}`` with ``encode_ordinary`` ids (special-token text stays text). The
strings aim at the places a reimplementation of tiktoken goes wrong: the contraction
alternatives and their case-insensitivity, whitespace lookahead (``\\s+(?!\\S)``), digit
grouping, punctuation followed by newlines or slashes, letters of every Unicode category
the o200k pattern distinguishes (Lu Lt Lm Lo Ll M), scripts without spaces, emoji
sequences, very long runs. About 100 real snippets are sampled with a fixed seed from
``<repo>/../shared/data`` when that folder exists (JSON, JSONL, CSV and text files only,
so the sample does not depend on whether pyarrow is installed).

Vocabularies come from ``Sources/BPE/Resources`` (the files the Swift tool embeds), each
checked against the sha256 tiktoken expects; nothing is downloaded. Output: JSON with
raw UTF-8 (only what JSON requires is escaped), one text or id list per line.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import tiktoken

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "python" / "tests"))

from shared_texts import collect, shared_data_dir  # noqa: E402  (after the path insert)
from tiktoken_offline import NAMES, get_encoding  # noqa: E402

SEED = 20261125
SNIPPETS = 100
SNIPPET_CHARS = 400


def contractions() -> list[str]:
    out = []
    for suffix in ("s", "t", "re", "ve", "m", "ll", "d"):
        variants = {suffix, suffix.upper(), suffix.capitalize(), suffix[:-1] + suffix[-1].upper()}
        for v in sorted(variants):
            out += [f"'{v}", f"it'{v}", f" '{v}"]
    out += [
        "don't",
        "DON'T",
        "Don'T",
        "I'm",
        "I'M",
        "we've",
        "WE'VE",
        "they'd",
        "You're",
        "YOU'RE",
        "''s",
        "'''",
        "'s'",
        "it''s",
        "rock'n'roll",
        "x 'll",
        "can'T",
        "O'Neil's",
        "'sS",
        "'st",
        "'9",
        "'\u015b",
        "l'amour",
        "\u2019s",
        "it\u2019s",
        "'",
        "''",
        "'s\n",
        "'S's'LL",
        "Hello'S",
        "HELLO'S",
        "hello'll've",
        "\u00c9T\u00c9'S",
    ]
    return out


def whitespace() -> list[str]:
    out = [
        " ",
        "  ",
        "   x",
        "\t",
        "\t\tx",
        "x\t\t",
        "\r\n",
        "\r\n\r\n",
        "\n\n\n",
        "a\n\n\nb",
        "trailing   ",
        "  x",
        " \n x",
        "\n \n",
        "x \n\n  y",
        "\r",
        "\r\r\n",
        " \r\n ",
        "a\r\nb",
        "\u00a0",
        "a\u00a0b",
        "a \u00a0b",
        "\u3000x",
        "x\u3000\u3000y",
        "x\u2028y",
        "\u2028",
        "\u0085",
        "a\u0085b",
        "\u2029",
        "a\u200bb",
        "\u2009thin",
        "\u202fx",
        "\u205f\u1680",
        "\x0c\x0b",
        " \t \n \t ",
        "hello  world",
        "hello   world",
        "a \t b",
        "x\n\n",
        "x \n",
        "\n\n\nx",
        "  \n\n  x",
        "\t\n",
        "line\r\n  indented\r\n",
        "end.\n\n\n\n",
        " \u00a0 \u00a0x",
    ]
    out += ["x" + " " * n for n in range(1, 9)]
    out += [" " * n + "x" for n in range(1, 9)]
    out += ["\n" * n + "x" for n in range(1, 5)]
    out += [" " * n + "\n" for n in range(1, 5)]
    return out


def digits() -> list[str]:
    out = [("1234567890" * 2)[:n] for n in range(1, 21)]
    out += [" " + "9" * n for n in (1, 2, 3, 4, 7)]
    out += [
        "1 2 3",
        " 123 456",
        " 1234 56789",
        "3.14159",
        "1,000,000",
        "$100",
        "12th",
        "x123y",
        "a1b22c333d4444",
        "\u0661\u0662\u0663",
        "\u0e51\u0e52\u0e53",
        "\u00bd",
        "\u00b2\u00b3",
        "\u216b",
        "\u2460",
        "\u0967\u0968\u0969",
        "\uff11\uff12\uff13",
        "2026-11-25T14:32:55Z",
        "0x7fffffff",
        "1e-10",
        "-42",
        "555-0123 ext. 42",
        "v1.2.3-rc.4",
    ]
    return out


def punctuation() -> list[str]:
    return [
        "!!!\n",
        "...\n\n",
        "?!/",
        "//",
        "///\n",
        "a/b/c",
        "http://example.com/path?q=1&r=2#frag",
        "--\n",
        "#!/usr/bin/env python\n",
        "}\n\n",
        "));\n",
        "<div>\n",
        "**bold**",
        "``code``",
        " ///",
        "/\n/",
        ".\r\n",
        ":\n\t",
        "'\n",
        '"quoted"',
        " !?",
        "a.b.c",
        "@user #tag",
        "foo@example.com",
        "C:\\Users\\x",
        "->",
        "=>",
        "!=",
        "===",
        "{}[]()",
        "<<<>>>",
        "~~~",
        "___",
        "…",
        "\u2014\u2014",
        "\u00bf\u00a1",
        "\u300c\u300d\u3001\u3002",
        ".\n/",
        "!/\n",
        ";\r\n\r\n",
        "* * *\n",
    ]


def scripts() -> list[str]:
    return [
        "你好，世界！",
        "机器学习是人工智能的一个分支。",
        "日本語のテキストです。",
        "カタカナ",
        "\uff76\uff80\uff76\uff85",
        "ひらがなとカタカナと漢字",
        "한국어 텍스트",
        "안녕하세요",
        "\u1100\u1161\u11a8",
        "مرحبا بالعالم",
        "مَرْحَبًا",
        "שָׁלוֹם",
        "नमस्ते दुनिया",
        "क्षत्रिय",
        "हिन्दी में",
        "สวัสดีครับ",
        "தமிழ்",
        "ქართული",
        "Ελληνικά",
        "Ωμέγα",
        "Привет Мир",
        "ΣΊΣΥΦΟΣ",
        "İstanbul",
        "straße STRASSE \u1e9e",
        "Tiếng Việt có dấu",
        "ئۇيغۇرچە",
        "አማርኛ",
        "ᠮᠣᠩᠭᠣᠯ",
        "中文English混合mixed文本",
        "東京2026年",
    ]


def emoji() -> list[str]:
    return [
        "😀",
        "👍🏽",
        "👨‍👩‍👧‍👦",
        "🏳️‍🌈",
        "🇯🇵",
        "❤️",
        "1️⃣",
        "🧑🏿‍💻",
        "I ❤️ NY 🗽",
        "🙂🙂🙂",
        "👩🏻‍🤝‍👩🏾",
        "🫠",
        "text😀text",
        " 😀",
        "😀\n",
        "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    ]


def marks_and_letters() -> list[str]:
    return [
        "\u0301",
        "e\u0301",
        "a\u0308\u0304",
        " \u0301",
        "\u0301x",
        "n\u0303",
        "Z\u0324\u0354\u0367\u0311a\u0316\u036d\u0308l",
        "HelloWorld",
        "ABCdef",
        "aBC",
        "XMLHttpRequest",
        "iPhone",
        "McDonald's",
        "camelCaseString",
        "SCREAMING_SNAKE_CASE",
        "snake_case",
        "\u01c5emal",
        "\u01c5",
        "\u01c5\u01c5x",
        "\u02b0ello",
        "a\u02b0b",
        "\u1d43\u1d47",
        "\u017f",
        "\ufb01",
        "\u00df",
        "ABC\u02b0def",
        "\u01c4\u01c5\u01c6",
        "Ab\u0301C",
        "A\u0301BC",
        "\u0903",
        "\u20dd",
        "x\u20dd",
        "ǅǅ'S",
    ]


def long_runs() -> list[str]:
    rng = random.Random(SEED)
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1000))
    return [
        "a" * 100,
        "antidisestablishmentarianism" * 5,
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        letters,
        "ab" * 500,
        " " * 5000,
        " " * 5000 + "x",
        "x" + " " * 5000,
        "\t" * 1000,
        "\n" * 1000,
        "1234567890" * 200,
        "!" * 1000,
        "中" * 500,
        "😀" * 200,
        "a " * 1000,
    ]


def specials() -> list[str]:
    return [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|fim_prefix|>",
        "<|endofprompt|>",
        "text<|endoftext|>text",
        "<|im_start|>user\nhi<|im_end|>\n",
        "<|endoftext",
        "|>",
        "<|",
    ]


def single_characters() -> list[str]:
    ascii_chars = [chr(c) for c in range(128)]
    categories = [
        "A",
        "z",
        "\u01c5",
        "\u02b0",
        "中",
        "\u0301",
        "\u0903",
        "\u20dd",
        "\u0663",
        "\u216b",
        "\u00bd",
        "_",
        "\u2014",
        "\u300c",
        "\u300d",
        "\u00ab",
        "\u00bb",
        "\u00a1",
        "\u2211",
        "\u20ac",
        "\u02dc",
        "\u00a9",
        "\u2003",
        "\u2028",
        "\u2029",
        "\u0085",
        "\u200d",
        "\ufeff",
        "\ue000",
        "\U000e0080",
        "\uffff",
        "\U0010ffff",
        "\U0001f600",
        "\u00ff",
        "\u0100",
        "\u07ff",
        "\u0800",
        "\U00010000",
    ]
    return ascii_chars + categories


def realistic() -> list[str]:
    return [
        "def f(x):\n    return x  # comment\n\n\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
        '{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}',
        "| col1 | col2 |\n|------|------|\n| 1    | 2    |\n",
        "Dear Sir/Madam,\r\n\r\nI'm writing to ask... Thanks!\r\n-- \r\nBob",
        "    indented code\n        more\n\ttabbed",
        "<html><body><p>Hello, world!</p></body></html>\n",
        "SELECT * FROM users WHERE id = 42;\n",
        "Q: What's 2+2?\nA: It's 4.\n\n",
        "",
    ]


def snippets() -> list[str]:
    root = shared_data_dir()
    if root is None:
        print("make_tiktoken_cases: ../shared/data not found; no real snippets", file=sys.stderr)
        return []
    texts = [t for t in collect(root, kinds=(".json", ".jsonl", ".csv", ".txt")).texts if len(t) >= 20]
    rng = random.Random(SEED)
    out = []
    for text in rng.sample(texts, SNIPPETS):
        start = rng.randrange(max(1, len(text) - SNIPPET_CHARS))
        out.append(text[start : start + SNIPPET_CHARS])
    return out


def cases() -> list[str]:
    groups = [
        contractions(),
        whitespace(),
        digits(),
        punctuation(),
        scripts(),
        emoji(),
        marks_and_letters(),
        long_runs(),
        specials(),
        single_characters(),
        realistic(),
        snippets(),
    ]
    out, seen = [], set()
    for group in groups:
        for text in group:
            if text not in seen:
                seen.add(text)
                out.append(text)
    return out


def dump(fixture: dict) -> str:
    """JSON with one element per line, so a regenerated fixture diffs readably."""
    parts = []
    for key, values in fixture.items():
        if isinstance(values, list):
            body = ",\n".join(json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in values)
            parts.append(f"{json.dumps(key)}: [\n{body}\n]")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(values, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def build() -> dict:
    texts = cases()
    fixture: dict = {
        "generator": "Tests/BPETests/Fixtures/make_tiktoken_cases.py",
        "tiktoken": tiktoken.__version__,
        "texts": texts,
    }
    for name in NAMES:
        fixture[name] = [get_encoding(name).encode_ordinary(text) for text in texts]
    return fixture


def main() -> None:
    text = dump(build())
    path = HERE / "tiktoken_cases.json"
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(text.encode()):,} bytes)")


if __name__ == "__main__":
    main()
