"""Multi-turn builds checked against the Python reference (tests/reference.py, buildcheck.py).

Chat lists (``messages`` with ``role``/``content``/``roles``/``system``) in a JSON array,
JSONL and Parquet, and row-per-turn sources (``group_by``) in JSONL and CSV are built by
the real CLI with every built-in template, ``loss: last_turn`` and custom templates, and
every document (tokens and loss mask), split, count and filter reason must be what the
reference computes on its own. A build with one flipped loss bit or token must fail the
check. Tests on ../shared/data's chat files skip, saying so, when it is absent.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import buildcheck
import cli
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import reference
import shardwriter
import zstandard
from shared_texts import shared_data_dir

from tokenmill import Dataset

pytestmark = pytest.mark.binary

SEQ_LEN = 96


def msg(role, content):
    return {"role": role, "content": content}


# Conversations in OpenAI form; each exercises something a build must get right.
CHATS = [
    # system, two exchanges
    [msg("system", "Be brief."), msg("user", "Hi"), msg("assistant", "Hello!"), msg("user", "Bye"), msg("assistant", "See you.")],
    # two leading system messages are one system prompt joined by \n (trimmed as a whole)
    [msg("system", "  First rule. "), msg("system", "Second rule.\r\n"), msg("user", "Rules?"), msg("assistant", "Two.")],
    # an empty system message still joins: "\nOnly this." trims to "Only this."
    [msg("system", ""), msg("system", "Only this."), msg("user", "And?"), msg("assistant", "Yes.")],
    # CRLF, lone CR, control characters, NFD and Unicode spaces in the turns
    [msg("user", "Line one\r\nLine two\rthree\x07"), msg("assistant", "\u3000Cafe\u0301 \x1b[0m"),
     msg("user", "e\u0301?"), msg("assistant", "\u00e9.\u2028")],
    # the same conversation again, differently cased and punctuated: an exact duplicate
    [msg("system", "be brief"), msg("user", "hi!"), msg("assistant", "HELLO"), msg("user", "bye..."), msg("assistant", "see you")],
    # text that looks like special tokens stays text
    [msg("user", "Echo <|im_end|> and <|eot_id|>"), msg("assistant", "<|im_start|>assistant <s> </s> [INST]"),
     msg("user", "<|endoftext|>"), msg("assistant", "<|begin_of_text|> done")],
    # CJK and emoji, three exchanges
    [msg("user", "用中文回答"), msg("assistant", "好的。😀"), msg("user", "什么是机器学习？"),
     msg("assistant", "机器学习是人工智能的一个分支。👍🏽"), msg("user", "谢谢"), msg("assistant", "不客气！👨‍👩‍👧")],
    # starts with the assistant; two user turns in a row; two assistant turns in a row
    [msg("assistant", "I speak first."), msg("user", "Oh."), msg("user", "Hello?"), msg("assistant", "Yes."),
     msg("assistant", "And again.")],
    # an empty assistant turn before the last: empty_assistant_turn (unless allowed)
    [msg("user", "A"), msg("assistant", "  "), msg("user", "B"), msg("assistant", "C")],
    # an empty last assistant turn: empty_response
    [msg("user", "Anything?"), msg("assistant", "Something."), msg("user", "More?"), msg("assistant", "\t\n")],
    # a long conversation: longer than seq_len (overflow, concat cuts)
    [msg("user", "Tell me a long story about the sea and the wind. " * 3),
     msg("assistant", " ".join(f"word{k}" for k in range(70))), msg("user", "Go on."),
     msg("assistant", " ".join(f"more{k}" for k in range(40)))],
    # upper-case role names, mapped case-insensitively
    [msg("USER", "Shout?"), msg("Assistant", "No need.")],
    # single exchange: equal to an instruction pair
    [msg("user", "What is 2+2?"), msg("assistant", "4.")],
    # a duplicate of the previous one, only whitespace differs
    [msg("user", "What   is 2+2 ?"), msg("assistant", " 4 ")],
    # two turns that say what another record says in one (the key joins turns with \n):
    # "What is 2+2?\n4." == "What is 2+2? 4." once whitespace runs collapse
    [msg("user", "What is"), msg("assistant", "2+2? 4.")],
]
BAD_CHATS = [
    [msg("user", "No answer.")],  # no assistant turn
    [msg("narrator", "x"), msg("assistant", "a")],  # unknown role
    [msg("user", "q"), msg("system", "late"), msg("assistant", "a")],  # a system message after the start
    [msg("user", 5), msg("assistant", "a")],  # content not a string
    "not a list",
    [msg("user", "q"), {"role": "assistant"}],  # no content
]


def write_chat_sources(folder: Path) -> list[dict]:
    """The multi-turn sources of every spec here, written into ``folder``: a JSON array,
    a JSONL file in ShareGPT form, a Parquet file, and two row-per-turn files."""
    rows = [{"id": k, "messages": m} for k, m in enumerate(CHATS + BAD_CHATS)]
    (folder / "chat.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")

    # ShareGPT form (from/value), with tool turns mapped by "roles", the map's "system" as
    # the default system prompt, a lone surrogate escape (repaired) and a bad JSON line.
    share = {"human": "user", "gpt": "assistant"}
    lines = []
    for k, chat in enumerate(CHATS[:8]):
        conv = [{"from": next((f for f, r in share.items() if r == m["role"]), m["role"]), "value": m["content"]}
                for m in chat if m["role"] != "system"]
        lines.append(json.dumps({"conversations": conv, "sys": f"System {k % 3}" if k % 2 else None}, ensure_ascii=False))
    lines.append(json.dumps({"conversations": [{"from": "human", "value": "Weather?"},
                                               {"from": "function_call", "value": '{"name": "weather"}'},
                                               {"from": "observation", "value": '{"temp": 20}'},
                                               {"from": "gpt", "value": "It is 20 degrees."}], "sys": "Tools."}))
    lines.append('{"conversations": [{"from": "human", "value": "lone \\ud800 here"}, {"from": "gpt", "value": "ok"}], "sys": ""}')
    lines.append('{"conversations": [{"from": "human", "value": "broken"')
    # Repairs count in top-level keys and mapped members only (an unmapped value is skipped).
    lines.append('{"conversations": [{"from": "human", "value": "Junk?"}, {"from": "gpt", "value": "Skipped."}], '
                 '"junk": "\\udc00", "sys": ""}')
    lines.append('{"conversations": [{"from": "human", "value": "Key?"}, {"from": "gpt", "value": "Repaired."}], '
                 '"\\ud800": 1, "sys": ""}')
    # A system message wins over the map's system; the first of two equal keys counts.
    lines.append(json.dumps({"conversations": [{"from": "system", "value": "From the chat."}, {"from": "human", "value": "Which?"},
                                               {"from": "gpt", "value": "The chat's."}], "sys": "From the map."}))
    lines.append('{"conversations": [{"from": "human", "value": "First key?"}, {"from": "gpt", "value": "Yes."}], '
                 '"conversations": "the second one", "sys": 7}')
    lines.append(json.dumps({"conversations": [{"from": "human", "value": "Bing?"}, {"from": "bing", "value": "No."}], "sys": ""}))
    lines.append("")
    (folder / "share.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # Parquet: messages list<struct<role, content>>, a null content and a null list.
    # All but the first repeat nothing the JSON source holds (the first is an exact duplicate).
    messages = CHATS[:1] + [[msg(m["role"], f"PQ {m['content']}") for m in chat] for chat in CHATS[2::2]]
    messages += [[msg("user", "null?"), msg("assistant", None)], None]
    table = pa.table({"messages": pa.array(messages, type=pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
                      "n": pa.array(range(len(messages)), type=pa.int64())})
    pq.write_table(table, folder / "chat.parquet", row_group_size=4)

    # A nested messages path; the map's system a template with an optional section.
    nested = [{"d": {"msgs": [{"r": "user", "c": "Nested?"}, {"r": "assistant", "c": "Yes."}], "sys": "Role", "name": "N1"}},
              {"d": {"msgs": [{"r": "user", "c": "No sys?"}, {"r": "assistant", "c": "None."}], "sys": "", "name": "N2"}},
              {"d": {"msgs": [{"r": "human", "c": "Number?"}, {"r": "gpt", "c": "Yes."}], "sys": 3.50, "name": True}},
              {"d": "not an object"},
              {"d": {"msgs": [{"r": "user", "c": "No name?"}, {"r": "assistant", "c": "Missing."}], "sys": "x"}}]
    (folder / "nested.jsonl").write_text("".join(json.dumps(r) + "\n" for r in nested), encoding="utf-8")

    # Row per turn, JSONL, with a role field, a system row and numeric order (10 after 9).
    turns = []
    for k in range(1, 11):
        turns.append({"dialog": "d1", "n": k, "who": "A" if k % 2 else "B", "line": f"turn {k}"})
    turns.insert(3, {"dialog": "d2", "n": 2, "who": "B", "line": "Hello back."})
    turns.insert(0, {"dialog": "d2", "n": 1, "who": "A", "line": "Hello."})
    turns.append({"dialog": "d2", "n": 0, "who": "Narrator", "line": "Be kind."})
    turns.append({"dialog": "d3", "n": 1, "who": "A", "line": "Alone."})  # no assistant turn: rejected
    turns.append({"dialog": "d4", "n": 1, "who": "Nobody", "line": "?"})  # unknown role: this row rejected
    turns.append({"dialog": "d4", "n": 2, "who": "A", "line": "Is d4 here?"})
    turns.append({"dialog": "d4", "n": 3, "who": "B", "line": "It is."})
    turns.append({"dialog": "d5", "n": "1.5", "who": "B", "line": "Second."})
    turns.append({"dialog": "d5", "n": "1e0", "who": "A", "line": "First."})
    turns.append({"dialog": "d2", "n": -1, "who": "narrator", "line": "Be calm."})  # two system rows: joined by "\n", as a chat list's are
    # " 2" is no number to Swift: this group sorts as text (" 2" < "1" < "10").
    turns += [{"dialog": "d6", "n": " 2", "who": "B", "line": "space two"}, {"dialog": "d6", "n": "1", "who": "A", "line": "one"},
              {"dialog": "d6", "n": "10", "who": "B", "line": "ten"}, {"dialog": "d7", "n": "0x10", "who": "B", "line": "hex 16"},
              {"dialog": "d7", "n": "9", "who": "A", "line": "nine"}]
    (folder / "turns.jsonl").write_text("".join(json.dumps(t) + "\n" for t in turns), encoding="utf-8")

    # Row per turn, CSV, speakers alternating, text order (not every value is a number).
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["conv", "idx", "utterance", "topic"])
    w.writerows([("c1", "b", "Fine, thanks.", "t1b"), ("c2", "1", "Morning!", "t2"), ("c1", "a", "How are you?", "t1a"),
                 ("c2", "x", "Good morning to you.", ""), ("c1", "c", "Great.", "t1c"), ("c1", "d", "Bye now.", "t1d"),
                 ("c3", "1", "Say \"hi\", please", "t3"), ("c3", "2", "hi, then", "t3"), ("c4", "2", "Two", "t4"),
                 ("c4", "1", "One,\nline two", "t4")])
    (folder / "turns.csv").write_text(buf.getvalue(), encoding="utf-8")

    return [
        {"name": "chat", "path": "chat.json", "map": {"messages": "messages"}},
        {"name": "share", "path": "share.jsonl", "map": {"messages": "conversations", "role": "from", "content": "value",
                                                         "roles": {"function_call": "assistant", "observation": "user"},
                                                         "system": "sys"}},
        {"name": "parquet", "path": "chat.parquet", "map": {"messages": "messages"}},
        {"name": "nested", "path": "nested.jsonl", "map": {"messages": "d.msgs", "role": "r", "content": "c",
                                                           "system": "[[{d.sys}: ]]{d.name}"}},
        {"name": "turns", "path": "turns.jsonl", "map": {"group_by": "dialog", "order_by": "n", "content": "line", "role": "who",
                                                         "roles": {"A": "user", "B": "assistant", "narrator": "system"}}},
        {"name": "csv", "path": "turns.csv", "map": {"group_by": "conv", "order_by": "idx", "content": "utterance",
                                                     "system": "Topic {topic}."}},
    ]


def write_spec(folder: Path, template, tokenizer="cl100k_base", strategy="best-fit", **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "name": "chat",
        "sources": write_chat_sources(folder),
        "on_error": "skip",
        "tokenizer": tokenizer,
        "template": template,
        "pack": {"seq_len": SEQ_LEN, "strategy": strategy, "overflow": extra.pop("overflow", "split")},
        "output": {"dir": "out", "shard_tokens": 700},
    }
    body.update(extra)
    path = folder / "spec.json"
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def build_and_check(tokenmill_bin, spec: Path, out: Path) -> dict:
    cli.build(tokenmill_bin, spec, out)
    return buildcheck.check_build(spec, out)


CUSTOM_INST = {  # TEMPLATES.md's example: BOS, no EOS, the end marker in the assistant's after
    "name": "inst-chat", "bos": "<s>", "eos": "none", "special_tokens": ["<s>", "</s>"],
    "system": {"before": "<<SYS>>\n", "after": "\n<</SYS>>\n\n"},
    "user": {"before": "[INST] ", "after": " [/INST]"},
    "assistant": {"before": " ", "after": " </s>"},
}
CUSTOM_ZEPHYR = {  # special tokens inside parts, a trained user part, EOS once at the end, a default system
    "name": "zephyr-ish", "eos": "end", "default_system": "You are helpful.",
    "special_tokens": ["<|user|>", "<|assistant|>", "<|system|>", "</s>", "<|user|>!"],
    "system": {"before": "<|system|>\n", "after": "</s>\n"},
    "user": {"before": {"text": "<|user|>!\n", "loss": False}, "after": {"text": "</s>\n", "loss": True}},
    "assistant": {"before": "<|assistant|>\n", "after": {"text": "</s>\n", "loss": True}},
}
CUSTOM_QA = {  # text parts only, EOS nowhere: under last_turn an untrained answer's after merges with the next
    # user's before ("\n" + "\n" is one token), so its ids differ from all_turns' (TEMPLATES.md says they do not)
    "name": "qa", "eos": "none", "bos": "<BOS>", "special_tokens": ["<SEP>"],
    "user": {"before": "\nUser: ", "after": "\n"}, "assistant": {"before": "Bot:<SEP>", "after": "\n"},
}
CUSTOM_BARE = {"special_tokens": ["<|endoftext|>", "<|fim_prefix|>"],  # tokens the vocabulary has keep their ids
               "user": {"before": "<|fim_prefix|>Q: ", "after": "\n"}, "assistant": {"before": "A:", "after": ""}}


@pytest.mark.parametrize(
    "template, tokenizer, strategy",
    [
        ("chatml", "cl100k_base", "best-fit"),
        ("chatml", "p50k_base", "pad"),
        ("plain", "gpt2", "none"),
        ("alpaca", "o200k_base", "best-fit"),
        ("llama3", "cl100k_base", "concat"),
        ("llama3", "gpt2", "best-fit"),
        ("align-anything", "gpt2", "best-fit"),
        ({"name": "chatml", "loss": "last_turn"}, "o200k_base", "best-fit"),
        ({"name": "llama3", "loss": "last_turn"}, "p50k_base", "none"),
        ({"name": "plain", "loss": "last_turn"}, "cl100k_base", "concat"),
        ({"name": "alpaca", "loss": "last_turn"}, "gpt2", "pad"),
        ({"name": "align-anything", "loss": "last_turn"}, "cl100k_base", "best-fit"),
        (CUSTOM_INST, "gpt2", "best-fit"),
        (CUSTOM_ZEPHYR, "cl100k_base", "none"),
        (dict(CUSTOM_ZEPHYR, loss="last_turn"), "o200k_base", "best-fit"),
        (CUSTOM_BARE, "cl100k_base", "best-fit"),
        (CUSTOM_QA, "gpt2", "none"),
        (dict(CUSTOM_QA, loss="last_turn"), "p50k_base", "best-fit"),
    ],
    ids=lambda v: v if isinstance(v, str) else (v.get("name", "custom") + "-" + v.get("loss", "all")),
)
def test_multi_turn_builds_are_the_references(tokenmill_bin, tmp_path, template, tokenizer, strategy):
    spec = write_spec(tmp_path, template, tokenizer, strategy)
    summary = build_and_check(tokenmill_bin, spec, tmp_path / "out")
    sources = summary["index"]["sources"]
    # Every source read something and rejected its planted bad rows.
    assert {n: s["rejected"] for n, s in sources.items()} == {"chat": 6, "share": 2, "parquet": 2, "nested": 2, "turns": 2,
                                                               "csv": 0}
    assert sources["share"]["repaired_utf8"] == 2
    assert sources["chat"]["filter_reasons"] == {"empty_assistant_turn": 1, "empty_response": 1}
    assert sources["chat"]["exact_dup"] == 3
    # Conversations of several assistant turns were trained on more than once.
    assert any(sum(1 for r, _ in d.rec.turns if r == reference.ASSISTANT) >= 3 for d in summary["docs"])


def test_last_turn_keeps_the_ids_and_trains_only_the_last_turn(tokenmill_bin, tmp_path):
    """Under chatml, ``loss: last_turn`` changes loss bits only: the tokens are those of
    ``all_turns``, and every token it trains on ``all_turns`` trains on too."""
    every = build_and_check(tokenmill_bin, write_spec(tmp_path / "all", "chatml", strategy="none"), tmp_path / "all" / "out")
    last = build_and_check(tokenmill_bin, write_spec(tmp_path / "last", {"name": "chatml", "loss": "last_turn"},
                                                     strategy="none"), tmp_path / "last" / "out")
    a = {s["tokens"]: s["mask"] for s in every["sequences"]}
    b = {s["tokens"]: s["mask"] for s in last["sequences"]}
    assert a.keys() == b.keys()
    assert all(all(x >= y for x, y in zip(a[t], b[t])) for t in a)
    assert sum(map(sum, b.values())) < sum(map(sum, a.values()))


@pytest.mark.parametrize("on", ["prompt", "response", "all"])
def test_exact_dedup_on_each_field(tokenmill_bin, tmp_path, on):
    spec = write_spec(tmp_path, "chatml", dedup={"exact": {"on": on}}, split={"validation": 0.3, "seed": 3})
    summary = build_and_check(tokenmill_bin, spec, tmp_path / "out")
    assert summary["index"]["sources"]["chat"]["exact_dup"] >= 2


def test_filters_over_every_turn(tokenmill_bin, tmp_path):
    """Empty turns allowed, empty responses kept, and chars bounds counted over system and
    every turn; sampled, as the reference draws it from the conversation's content."""
    spec = write_spec(tmp_path, "llama3", filter={"allow_empty_turns": True, "drop_empty_response": False,
                                                  "min_chars": 12, "max_chars": 900, "min_words": 3},
                      dedup=False, sample={"records": 20, "seed": 9})
    summary = build_and_check(tokenmill_bin, spec, tmp_path / "out")
    reasons = summary["index"]["sources"]["chat"]["filter_reasons"]
    assert "empty_assistant_turn" not in reasons and "empty_response" not in reasons
    assert sum(s["filtered"] for s in summary["index"]["sources"].values()) > 0
    assert sum(s["subsampled"] for s in summary["index"]["sources"].values()) > 0


def test_mix_over_chat_and_grouped_sources(tokenmill_bin, tmp_path):
    """``mix`` by records repeats and subsamples conversations by their draws (their
    content hashes: system and every turn), split by the same draws."""
    mix = {"by": "records", "total": 80, "seed": 4,
           "proportions": {"chat": 0.3, "share": 0.2, "parquet": 0.1, "nested": 0.1, "turns": 0.2, "csv": 0.1}}
    spec = write_spec(tmp_path, "alpaca", "gpt2", mix=mix, split={"validation": 0.2, "seed": 5})
    summary = build_and_check(tokenmill_bin, spec, tmp_path / "out")
    assert sum(len(s["cu"]) - 1 for split in summary["splits"].values() for s in split) >= 80


def test_bad_rows_stop_a_build_that_does_not_skip_them(tokenmill_bin, tmp_path):
    """Under ``on_error: fail`` the first bad chat row stops the build (exit 65), and the
    reference says the same rows are bad."""
    spec = write_spec(tmp_path, "chatml")
    body = json.loads(spec.read_text())
    body.pop("on_error")
    body["sources"] = body["sources"][:1]
    spec.write_text(json.dumps(body))
    result = cli.run(tokenmill_bin, "build", spec, "--out", tmp_path / "out", "--quiet", check=False)
    assert result.returncode == 65 and b"chat.json" in result.stderr, result.stderr
    with pytest.raises(reference.BadInput):
        reference.kept_records(spec)


# -- the reference is honest: a build that differs in one bit fails the check -------------------


def rewrite_build(out: Path, mutate) -> None:
    """Rewrites a real build's shards with ``mutate(sequences)`` applied to its train split
    (every other file, index.json included, describes the original)."""
    index = json.loads((out / "index.json").read_text())
    splits = {}
    for split in index["splits"]:
        with Dataset(out, split) as ds:
            seqs = [(ex["input_ids"].tolist(), [int(b) for b in ex["loss_mask"]], ex["cu_seqlens"][:-1].tolist())
                    for ex in (ds[i] for i in range(len(ds)))]
        if split == "train":
            mutate(seqs)
        splits[split] = [seqs]
    for f in out.glob("*.tkm"):
        f.unlink()
    written = shardwriter.write_dataset(out, splits, index["tokenizer"]["vocab_size"], chunk_records=4,
                                        strategy=index["pack"]["strategy"], seq_len=index["seq_len"])
    index["splits"] = written["splits"]
    (out / "index.json").write_text(json.dumps(index))


def flip_first_loss_bit(seqs, trained: bool) -> None:
    """Flips the first loss bit that is ``trained`` (1) or not (0), past a sequence's first token."""
    for _, mask, _ in seqs:
        for k in range(1, len(mask)):
            if bool(mask[k]) == trained:
                mask[k] ^= 1
                return
    raise AssertionError("nothing to flip")


@pytest.mark.parametrize(
    "template, mutation",
    [
        ("chatml", "loss-off"),
        ("chatml", "loss-on"),
        ({"name": "chatml", "loss": "last_turn"}, "history-on"),
        (CUSTOM_ZEPHYR, "token"),
        ({"name": "llama3", "loss": "last_turn"}, "token"),
    ],
    ids=["chatml-loss-off", "chatml-loss-on", "last_turn-history-on", "custom-token", "llama3-last-token"],
)
def test_a_build_off_by_one_bit_fails_the_check(tokenmill_bin, tmp_path, template, mutation):
    spec = write_spec(tmp_path, template, strategy="best-fit")
    out = tmp_path / "out"
    cli.build(tokenmill_bin, spec, out)
    buildcheck.check_build(spec, out)  # the build itself passes

    def mutate(seqs):
        if mutation == "token":
            tokens = seqs[len(seqs) // 2][0]
            tokens[len(tokens) // 2] = 11 if tokens[len(tokens) // 2] != 11 else 12
            return
        if mutation == "history-on":
            # An earlier assistant turn's content: untrained tokens between the
            # "assistant\n" header and the next <|im_end|>, in a sequence with several turns.
            enc, specials = buildcheck.encoding_for(json.loads((out / "index.json").read_text()))
            header = enc.encode_ordinary("assistant\n")
            for tokens, mask, _ in seqs:
                for k in range(len(tokens) - len(header)):
                    if tokens[k : k + len(header)] == header and not mask[k + len(header)] \
                            and tokens[k + len(header)] != specials["<|im_end|>"]:
                        mask[k + len(header)] = 1
                        return
            raise AssertionError("no untrained assistant turn")
        flip_first_loss_bit(seqs, trained=mutation == "loss-off")

    rewrite_build(out, lambda seqs: None)
    buildcheck.check_build(spec, out)  # rewritten unchanged, it still passes
    rewrite_build(out, mutate)
    with pytest.raises(AssertionError, match="documents"):
        buildcheck.check_build(spec, out)


# -- ../shared/data's chat files ------------------------------------------------------------------


def shared_or_skip() -> Path:
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared (next to the repository) is absent: the shared chat files are not checked")
    return data


def shared_spec(folder: Path, sources: list[dict], template="chatml", tokenizer="cl100k_base", seq_len=4096, **extra) -> Path:
    body = {"name": "shared", "sources": sources, "on_error": "skip", "dedup": {"exact": True},
            "tokenizer": tokenizer, "template": template,
            "pack": {"seq_len": seq_len, "strategy": "best-fit", "overflow": "split"}, "output": {"dir": "out"}}
    body.update(extra)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


@pytest.mark.shared_data
def test_shared_sharegpt_part_against_the_reference(tokenmill_bin, tmp_path):
    """The first 600 conversations of ShareGPT v3 part 0 (Specs/shared/sharegpt.json's file,
    human/gpt roles, stray surrogates, unknown roles, chats without an answer)."""
    data = shared_or_skip()
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO((data / "chat" / "sharegpt_v3_split_part0.json.zst").read_bytes())).read()
    rows = json.loads(raw)[:600]
    (tmp_path / "sharegpt.json").write_text(json.dumps(rows), encoding="utf-8")  # ASCII escapes: surrogates survive
    spec = shared_spec(tmp_path, [{"name": "sharegpt", "path": "sharegpt.json",
                                   "map": {"messages": "conversations", "role": "from", "content": "value"}}],
                       template={"name": "chatml", "loss": "last_turn"}, split={"validation": 0.05, "seed": 1})
    summary = build_and_check(tokenmill_bin, spec, tmp_path / "out")
    counts = summary["index"]["sources"]["sharegpt"]
    assert counts["read"] > 500 and counts["kept"] > 400, counts


@pytest.mark.shared_data
def test_shared_chat_messages_parquet_against_the_reference(tokenmill_bin, tmp_path):
    """Specs/shared/chat_messages.json's Parquet file (messages: list<struct<role, content>>)."""
    data = shared_or_skip()
    spec = shared_spec(tmp_path, [{"name": "chat_messages", "path": str(data / "derived" / "chat_messages.parquet"),
                                   "map": {"messages": "messages"}}], template="llama3", tokenizer="o200k_base")
    counts = build_and_check(tokenmill_bin, spec, tmp_path / "out")["index"]["sources"]["chat_messages"]
    assert (counts["read"], counts["rejected"]) == (3467, 3), counts


@pytest.mark.shared_data
def test_shared_empathetic_dialogues_grouped_against_the_reference(tokenmill_bin, tmp_path):
    """Specs/shared/empathetic_dialogues.json's CSV, one utterance a row, grouped by
    conv_id and ordered by utterance_idx, speakers alternating."""
    data = shared_or_skip()
    spec = shared_spec(tmp_path, [{"name": "ed_valid", "path": str(data / "empathetic_dialogues" / "ed_valid.csv"),
                                   "map": {"group_by": "conv_id", "order_by": "utterance_idx", "content": "utterance",
                                           "system": "Context: {prompt}"}}], template="alpaca", tokenizer="gpt2", seq_len=1024)
    counts = build_and_check(tokenmill_bin, spec, tmp_path / "out")["index"]["sources"]["ed_valid"]
    assert (counts["read"], counts["rejected"]) == (12077, 1), counts


@pytest.mark.shared_data
def test_shared_tool_calls_and_kto_chats_against_the_reference(tokenmill_bin, tmp_path):
    """LLaMA-Factory's glaive tool-call demo (human/gpt/function_call/observation, the tool
    turns mapped by ``roles``) and its KTO demo (OpenAI messages) under a custom template;
    without the roles map, every tool-call conversation is rejected for its unknown role."""
    data = shared_or_skip()
    chat = data / "chat"
    sources = [{"name": "glaive", "path": str(chat / "llamafactory_glaive_toolcall_en_demo.json"),
                "map": {"messages": "conversations", "role": "from", "content": "value",
                        "roles": {"function_call": "assistant", "observation": "user"}}},
               {"name": "glaive_plain", "path": str(chat / "llamafactory_glaive_toolcall_en_demo.json"),
                "map": {"messages": "conversations", "role": "from", "content": "value"}},
               {"name": "kto", "path": str(chat / "llamafactory_kto_en_demo.json"), "map": {"messages": "messages"}}]
    spec = shared_spec(tmp_path, sources, template=CUSTOM_ZEPHYR, tokenizer="gpt2", seq_len=2048)
    counts = build_and_check(tokenmill_bin, spec, tmp_path / "out")["index"]["sources"]
    assert counts["glaive"]["rejected"] == 0 and counts["glaive_plain"]["rejected"] > 0
    assert counts["kto"]["read"] == 300


@pytest.mark.parametrize("template", ["plain", "chatml"])
def test_units_whose_first_documents_train_every_token(tokenmill_bin, tmp_path, template):
    """A scan unit writes no loss-mask file while every token it has tokenized has loss 1
    (docs/PIPELINE.md): here a unit's first conversations are assistant-only (all trained
    under ``plain``), then a user turn brings loss-0 tokens, then all-trained ones again,
    and a second source trains every token. Each document's tokens and mask must still be
    the reference's."""
    solo = [[msg("assistant", f"Only the assistant speaks, time {k}.")] for k in range(5)]
    mixed = [[msg("user", "A question?"), msg("assistant", "An answer.")], [msg("user", "Another?"), msg("assistant", "Yes.")]]
    rows = solo[:3] + mixed + solo[3:]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows), encoding="utf-8")
    other = [[msg("assistant", f"Source b speaks alone, time {k}.")] for k in range(5)]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"messages": m}) + "\n" for m in other), encoding="utf-8")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "name": "masks", "tokenizer": "cl100k_base", "template": template,
        "sources": [{"name": "a", "path": "a.jsonl", "map": {"messages": "messages"}},
                    {"name": "b", "path": "b.jsonl", "map": {"messages": "messages"}}],
        "pack": {"seq_len": SEQ_LEN, "strategy": "best-fit"}, "output": {"dir": "out"},
    }), encoding="utf-8")
    summary = build_and_check(tokenmill_bin, spec, tmp_path / "out")
    docs = summary["docs"]
    assert len(docs) == 12
    if template == "plain":
        # The reference says which documents train every token: the assistant-only ones.
        assert sum(1 for d in docs if all(d.mask)) == 10
