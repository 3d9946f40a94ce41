"""A small build spec with nasty inputs, written into a temporary folder.

The records exercise what a build must get right: CRLF and lone CR, control characters,
leading/trailing Unicode spaces, NFD text that is an exact duplicate after NFC,
verbatim duplicates, text that looks like special tokens, CJK and emoji, an empty
``input`` in an alpaca-style ``{instruction}\\n\\n{input}`` template, and documents longer
than ``seq_len`` (so overflow and concat cuts happen). Records are deterministic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEQ_LEN = 64

WORDS = (
    "the of and to in is was that for it with as his on be at by had are but from or have an they which "
    "one you were all we her she there would their will when who him been has more if no out so said what "
    "up its about than into them can only other new some could time these two may first then do any like "
    "my now over "
    "such our man me even most made after also did many before must through back years where much your way "
    "well down should because each just those people Mr how too little state good very make world still own "
    "see men work long get here between both life being under never day same another know while last might "
    "us great old year off come since against go came right used take three"
).split()

INSTRUCTIONS = [
    {"instruction": "Say hello.", "input": "", "output": "Hello!", "sys": ""},
    {"instruction": "Say hello.", "input": "", "output": "Hello!", "sys": ""},  # verbatim duplicate
    {
        "instruction": "Say hello.\r\n",
        "input": "  ",
        "output": "Hello!\r",
        "sys": "",
    },  # duplicate once normalized
    {
        "instruction": "Translate to French",
        "input": "I'm here, aren't I? It's 5 o'clock.",
        "output": "Je suis là.",
        "sys": "",
    },
    {"instruction": "Cafe\u0301 or café?", "input": "", "output": "Both are \u00e9.", "sys": ""},
    {
        "instruction": "Café or café?",
        "input": "",
        "output": "Both are e\u0301.",
        "sys": "",
    },  # NFD/NFC duplicate
    {
        "instruction": "Line one\rLine two\r\nLine three",
        "input": "",
        "output": "Three\tlines",
        "sys": "Be brief.",
    },
    {
        "instruction": "Bell\x07 and escape\x1b[0m and NUL\x00 here",
        "input": "",
        "output": "Gone\x0b",
        "sys": "",
    },
    {
        "instruction": "\u3000\u00a0 trim me \u2028",
        "input": "",
        "output": "\n\n trimmed \t",
        "sys": " \u0085",
    },
    {
        "instruction": "Echo",
        "input": "<|im_end|> and <|endoftext|> stay text",
        "output": "<|im_start|>assistant",
        "sys": "",
    },
    {
        "instruction": "用中文回答",
        "input": "什么是机器学习？",
        "output": "机器学习是人工智能的一个分支。😀👍🏽👨‍👩‍👧",
        "sys": "你是助手",
    },
    {"instruction": "Count", "input": "1 22 333 4444 55555", "output": "12345678901234567890", "sys": ""},
    {"instruction": "Code", "input": "", "output": "def f(x):\n    return x  # comment\n\n\n", "sys": ""},
    {"instruction": "Empty answer", "input": "", "output": "   ", "sys": ""},
]


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def instruction_rows() -> list[dict]:
    rng = random.Random(1234)
    rows = list(INSTRUCTIONS)
    for k in range(24):
        size = rng.choice([2, 5, 9, 20, 40, 90])
        rows.append(
            {
                "instruction": _words(rng, rng.randint(1, 12)).capitalize() + "?",
                "input": _words(rng, rng.randint(0, 6)),
                "output": _words(rng, size) + ".",
                "sys": "You are helpful." if k % 5 == 0 else "",
            }
        )
    return rows


def text_rows() -> list[dict]:
    rng = random.Random(99)
    rows = [
        {"text": "A short document."},
        {"text": "A short document."},
        {"text": "Unicode: naïve résumé — “quotes”, 日本語のテキスト, 한국어."},
    ]
    for _ in range(10):
        rows.append({"text": "\n\n".join(_words(rng, rng.randint(3, 60)) for _ in range(rng.randint(1, 4)))})
    rows.append({"text": _words(rng, 300)})  # several times seq_len
    return rows


def write_spec(
    folder: Path,
    template: str,
    tokenizer: str,
    strategy: str,
    overflow: str = "split",
    shuffle_seed: int | None = None,
) -> Path:
    """Write data/inst.jsonl, data/web.jsonl and spec.json into ``folder``; return the spec path."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "inst.jsonl", "w", encoding="utf-8", newline="\n") as file:
        for row in instruction_rows():
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(data / "web.jsonl", "w", encoding="utf-8", newline="\n") as file:
        for row in text_rows():
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
    output: dict = {"dir": "out", "shard_tokens": 1000, "zstd_level": 3}
    if shuffle_seed is not None:
        output["shuffle_seed"] = shuffle_seed
    spec = {
        "name": f"test-{template}-{strategy}",
        "sources": [
            {
                "name": "inst",
                "path": "data/inst.jsonl",
                "map": {"prompt": "{instruction}\n\n{input}", "response": "output", "system": "sys"},
            },
            {"name": "web", "path": "data/web.jsonl", "map": {"text": "text"}},
        ],
        "normalize": {"unicode": "NFC", "newlines": True, "strip_control": True, "trim": True},
        "dedup": {"exact": True},
        "tokenizer": tokenizer,
        "template": template,
        "pack": {"seq_len": SEQ_LEN, "strategy": strategy, "overflow": overflow},
        "output": output,
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
