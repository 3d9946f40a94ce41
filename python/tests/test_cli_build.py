"""The tokenmill binary's builds, checked document by document against the Python reference.

Needs the binary (``TOKENMILL_BIN`` or ``<repo>/.build/release/tokenmill``); skipped without it.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import buildcheck
import cli
import pytest
import reference
import near_dup_oracle
import shardwriter
import specdata

from tokenmill import Dataset, ShardError

pytestmark = pytest.mark.binary


@pytest.fixture(scope="session")
def demo_spec(repo) -> Path:
    path = repo / "Specs" / "demo.json"
    if not path.is_file():
        pytest.skip(f"{path} does not exist yet")
    return path


@pytest.fixture(scope="session")
def demo_build(tokenmill_bin, demo_spec, tmp_path_factory) -> Path:
    return cli.build(tokenmill_bin, demo_spec, tmp_path_factory.mktemp("demo") / "out", threads=2)


def check_or_skip(spec: Path, out: Path) -> dict:
    try:
        return buildcheck.check_build(spec, out)
    except reference.Unsupported as error:
        pytest.skip(f"the Python reference does not model {error}")


def test_demo_documents_are_its_rendered_source_records(demo_spec, demo_build):
    # Not check_or_skip: the reference models everything the demo uses (near dedup and
    # decontamination included), so an Unsupported here is a failure, not a skip.
    summary = buildcheck.check_build(demo_spec, demo_build)
    index = summary["index"]
    assert sum(s["near_dup"] for s in index["sources"].values()) > 0, "the demo's near dedup removed nothing"
    assert summary["sequences"], "the demo build is empty"
    assert (demo_build / "rejects.jsonl").is_file()


@pytest.mark.parametrize(
    "template, tokenizer",
    [("plain", "cl100k_base"), ("alpaca", "gpt2"), ("chatml", "o200k_base"), ("chatml", "p50k_base"),
     ("llama3", "cl100k_base"), ("align-anything", "gpt2")],
)
@pytest.mark.parametrize("strategy", ["none", "concat", "best-fit", "pad"])
def test_own_spec_documents_and_packing(tokenmill_bin, tmp_path, template, tokenizer, strategy):
    spec = specdata.write_spec(tmp_path, template, tokenizer, strategy)
    out = cli.build(tokenmill_bin, spec, tmp_path / "out")
    summary = check_or_skip(spec, out)
    width = 2 if summary["index"]["tokenizer"]["vocab_size"] <= 65536 else 4
    assert summary["index"]["dtype"] == ("uint16" if width == 2 else "uint32")
    assert len(list(out.glob("train-*.tkm"))) >= 2, "shard_tokens 1000 should give several shards"


@pytest.mark.parametrize("strategy", ["concat", "best-fit"])
def test_shuffled_build_holds_the_same_sequences(tokenmill_bin, tmp_path, strategy):
    spec = specdata.write_spec(tmp_path, "chatml", "cl100k_base", strategy, shuffle_seed=42)
    out = cli.build(tokenmill_bin, spec, tmp_path / "out")
    check_or_skip(spec, out)
    again = cli.build(tokenmill_bin, spec, tmp_path / "again", threads=1)
    assert_same_directories(out, again)


@pytest.mark.parametrize("overflow", ["truncate", "drop"])
def test_overflow_modes(tokenmill_bin, tmp_path, overflow):
    spec = specdata.write_spec(tmp_path, "plain", "gpt2", "best-fit", overflow=overflow)
    check_or_skip(spec, cli.build(tokenmill_bin, spec, tmp_path / "out"))


def assert_same_directories(a: Path, b: Path) -> None:
    """Same file names, same bytes, except report.json (timings, threads, host)."""
    names_a = sorted(p.name for p in a.iterdir() if p.name not in ("report.json", "report.html") and not p.name.startswith("."))
    names_b = sorted(p.name for p in b.iterdir() if p.name not in ("report.json", "report.html") and not p.name.startswith("."))
    assert names_a == names_b
    differ = [n for n in names_a if not filecmp.cmp(a / n, b / n, shallow=False)]
    assert not differ, f"files differ between {a} and {b}: {differ}"


def test_thread_count_does_not_change_the_bytes(tokenmill_bin, demo_spec, tmp_path):
    one = cli.build(tokenmill_bin, demo_spec, tmp_path / "one", threads=1)
    two = cli.build(tokenmill_bin, demo_spec, tmp_path / "two", threads=2)
    assert_same_directories(one, two)
    spec = specdata.write_spec(tmp_path / "own", "chatml", "cl100k_base", "best-fit")
    assert_same_directories(
        cli.build(tokenmill_bin, spec, tmp_path / "own1", threads=1),
        cli.build(tokenmill_bin, spec, tmp_path / "own2", threads=2),
    )


def test_verify_accepts_an_intact_build(tokenmill_bin, demo_build):
    cli.run(tokenmill_bin, "verify", demo_build)


def damage_offsets(path: Path) -> dict[str, int]:
    """Byte offsets to flip: in the header, first and last chunk, footer and trailer."""
    data = path.read_bytes()
    size = len(data)
    footer_offset, footer_size, _ = struct.unpack_from("<QQQ", data, size - 32)
    (chunk_count,) = struct.unpack_from("<I", data, footer_offset + 16)
    last = footer_offset + 24 + 40 * (chunk_count - 1)
    last_offset, last_size = struct.unpack_from("<QI", data, last)
    return {
        "header magic": 1,
        "header version": 8,
        "header token_width": 12,
        "header reserved": 20,
        "header checksum": 30,
        "chunk: first byte of chunk 0": 32,
        "chunk: middle of chunk 0": 32 + struct.unpack_from("<I", data, footer_offset + 24 + 8)[0] // 2,
        "chunk: last byte of the last chunk": last_offset + last_size - 1,
        "footer record_count": footer_offset,
        "footer chunk table": footer_offset + 24 + 9,
        "footer last entry checksum": last + 39,
        "trailer footer_offset": size - 32,
        "trailer footer_checksum": size - 12,
        "trailer magic": size - 1,
    }


def test_flipped_bytes_fail_verify_and_the_reader(tokenmill_bin, demo_build, tmp_path):
    shard = "train-00000.tkm"
    offsets = damage_offsets(demo_build / shard)
    failures = []
    for k, (label, offset) in enumerate(offsets.items()):
        damaged = tmp_path / f"copy{k}"  # not the label: "chunk" in the path would fake a mention
        shutil.copytree(demo_build, damaged)
        data = bytearray((damaged / shard).read_bytes())
        data[offset] ^= 0x5A
        (damaged / shard).write_bytes(data)
        result = cli.run(tokenmill_bin, "verify", damaged, check=False)
        said = (result.stderr + result.stdout).decode(errors="replace").replace(str(damaged), "DIR")
        if result.returncode == 0:
            failures.append(f"{label} (offset {offset}): verify exited 0")
        elif shard not in said:
            failures.append(f"{label} (offset {offset}): verify did not name {shard}: {said.strip()[:300]}")
        elif label.startswith("chunk") and "chunk" not in said:
            failures.append(f"{label} (offset {offset}): verify did not name the chunk: {said.strip()[:300]}")
        try:
            with Dataset(damaged) as ds:
                for i in range(len(ds)):
                    ds[i]
                ds.verify()
            failures.append(f"{label} (offset {offset}): the Python reader noticed nothing")
        except ShardError:
            pass
    assert not failures, "\n".join(failures)


def test_index_json_is_deterministic_and_matches_shards(demo_build):
    text = (demo_build / "index.json").read_text(encoding="utf-8")
    for word in ("time", "host", "thread", "duration"):
        assert word not in text.lower(), f"index.json mentions {word!r}, which belongs in report.json"
    with Dataset(demo_build) as ds:
        assert sum(len(s) for s in ds.shards) == len(ds)
        for shard in ds.shards:
            assert os.path.getsize(shard.path) == shard.size


def test_repeats_in_later_units_skip_work_but_not_bytes(tokenmill_bin, tmp_path, repo):
    """Records repeating a key that an earlier unit holds are neither signed nor tokenized
    (Pipeline/EarlierKeys.swift); which units ran first decides what is skipped, so builds
    with one and two threads and with several unit sizes must all give the reference's
    documents and the same bytes. The later files repeat most of the earlier ones."""
    rows = json.loads((repo / "Specs" / "data" / "alpaca_en_2000.json").read_text(encoding="utf-8"))
    parts = [rows[0:300], rows[100:400] + rows[0:40], list(reversed(rows[250:450])) + rows[5:60]]
    for k, part in enumerate(parts):
        (tmp_path / f"part-{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "name": "repeats",
        "sources": [{"name": "alpaca", "path": "part-*.jsonl", "map": {"prompt": "{instruction}\n\n{input}", "response": "output"}}],
        "dedup": {"exact": True}, "tokenizer": "cl100k_base", "template": "plain",
        "pack": {"seq_len": 512, "strategy": "best-fit", "overflow": "split"},
        "output": {"dir": "out", "shard_tokens": 20000},
    }), encoding="utf-8")
    outs = []
    for threads, unit in [(1, None), (2, "8192"), (2, "3001"), (1, "3001")]:
        env = dict(os.environ)
        env.pop("TOKENMILL_UNIT_BYTES", None)
        if unit:
            env["TOKENMILL_UNIT_BYTES"] = unit
        out = tmp_path / f"out-{threads}-{unit}"
        r = subprocess.run([str(tokenmill_bin), "build", str(spec), "--out", str(out), "--threads", str(threads), "--quiet"],
                           capture_output=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        outs.append(out)
    summary = check_or_skip(spec, outs[0])
    counts = summary["index"]["sources"]["alpaca"]
    # 895 rows over 450 distinct records (a filtered row counts as filtered, not exact_dup).
    assert counts["exact_dup"] >= 895 - 450 - 5, counts
    for other in outs[1:]:
        assert_same_directories(outs[0], other)


def test_splits_stay_put_when_sources_change_and_copies_follow_their_record(tokenmill_bin, tmp_path, repo):
    """A record's split is drawn from its source's name and its own content: inserting a
    source before the others, reordering them and dropping one moves no record between
    splits; a `weight` 3 source sends every copy of a validation record to validation, so
    no validation document is also in train (issue 16's "shaping")."""
    data = repo / "Specs" / "data"
    sources = {
        "alpaca": {"name": "alpaca", "path": str(data / "alpaca_en_2000.json"), "map": {"prompt": "{instruction}\n\n{input}", "response": "output"}},
        "zh": {"name": "zh", "path": str(data / "alpaca_zh_500.jsonl"), "map": {"prompt": "{instruction}\n\n{input}", "response": "output"}},
        "peps": {"name": "peps", "path": str(data / "python_peps_40.jsonl"), "map": {"text": "text"}},
    }

    def build(name, order, weights=None):
        spec = tmp_path / f"{name}.json"
        srcs = [dict(sources[k], **({"weight": weights[k]} if weights and k in weights else {})) for k in order]
        spec.write_text(json.dumps({
            "name": name, "sources": srcs, "dedup": {"exact": True}, "split": {"validation": 0.1, "seed": 7},
            "tokenizer": "cl100k_base", "template": "chatml", "pack": {"seq_len": 4096, "strategy": "none"},
            "output": {"dir": f"out-{name}"}}), encoding="utf-8")
        out = cli.build(tokenmill_bin, spec, tmp_path / f"out-{name}")
        if name == "base":
            check_or_skip(spec, out)   # the reference draws each record's split on its own
        return {split: [bytes(np.asarray(Dataset(str(out), split)[i]["input_ids"], dtype="<u4").tobytes())
                        for i in range(len(Dataset(str(out), split)))] for split in ("train", "validation")}

    import numpy as np

    base = build("base", ["alpaca", "zh"])
    assert len(base["validation"]) > 100 and len(base["train"]) > 1000
    moved = build("moved", ["peps", "zh", "alpaca"])
    # peps' own records may go either way; alpaca's and zh's must not move.
    assert set(base["validation"]) <= set(moved["validation"])
    assert set(base["train"]) <= set(moved["train"])
    alone = build("alone", ["alpaca"])
    alpaca_val = set(alone["validation"])
    assert alpaca_val and alpaca_val <= set(base["validation"]) and not (alpaca_val & set(base["train"]))
    weighted = build("weighted", ["alpaca", "zh"], {"alpaca": 3})
    assert not set(weighted["validation"]) & set(weighted["train"]), "a validation document is also trained on"
    assert set(base["validation"]) == set(weighted["validation"])


def test_truncation_that_would_train_on_nothing_drops_the_record(tokenmill_bin, tmp_path):
    """Under `overflow: truncate`, a record whose first seq_len tokens are all prompt would
    be written with nothing to train on: it is dropped and counted as overflow_dropped; a
    record whose response starts inside seq_len is truncated; chats with an empty
    assistant turn are filtered by reason. Checked against the reference."""
    rows = [
        {"instruction": "Say hi.", "output": "Hi there, friend!"},
        {"instruction": " ".join(["word"] * 80), "output": "Short answer."},          # all prompt within 32
        {"instruction": "Count.", "output": " ".join(str(i) for i in range(60))},      # truncated, trains
        {"instruction": "Empty?", "output": ""},                                     # empty_response
    ]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "name": "trunc", "sources": [{"name": "s", "path": "rows.jsonl", "map": {"prompt": "instruction", "response": "output"}}],
        "tokenizer": "gpt2", "template": "plain", "pack": {"seq_len": 32, "strategy": "best-fit", "overflow": "truncate"},
        "output": {"dir": "out"}}), encoding="utf-8")
    out = cli.build(tokenmill_bin, spec, tmp_path / "out")
    counts = json.loads((out / "index.json").read_text())["sources"]["s"]
    assert (counts["overflow_dropped"], counts["truncated"], counts["kept"], counts["filtered"]) == (1, 1, 1, 1), counts
    check_or_skip(spec, out)
    for i in range(len(Dataset(str(out), "train"))):
        assert Dataset(str(out), "train")[i]["loss_mask"].any(), "a sequence with nothing to train on was written"


def test_a_global_sample_after_dedup_is_the_references_and_stays_put(tokenmill_bin, tmp_path, repo):
    """`sample: {"records": N, "seed": s}` keeps the N records with the smallest draws among
    those that survive dedup, over all sources, counted as `subsampled` otherwise, checked
    against the reference; with a `tokens` budget, the records fill it without passing it."""
    data = repo / "Specs" / "data"
    sources = [{"name": "alpaca", "path": str(data / "alpaca_en_2000.json"), "map": {"prompt": "{instruction}\n\n{input}", "response": "output"}},
               {"name": "zh", "path": str(data / "alpaca_zh_500.jsonl"), "map": {"prompt": "{instruction}\n\n{input}", "response": "output"}}]

    def build(name, sample):
        spec = tmp_path / f"{name}.json"
        spec.write_text(json.dumps({
            "name": name, "sources": sources, "dedup": {"exact": True}, "sample": sample,
            "tokenizer": "cl100k_base", "template": "plain", "pack": {"seq_len": 4096, "strategy": "none"},
            "output": {"dir": f"out-{name}"}}), encoding="utf-8")
        return spec, cli.build(tokenmill_bin, spec, tmp_path / f"out-{name}")

    spec, out = build("records", {"records": 700, "seed": 1})
    index = json.loads((out / "index.json").read_text())
    kept = sum(s["kept"] for s in index["sources"].values())
    assert kept == 700 and index["splits"]["train"]["records"] == 700
    assert sum(s["subsampled"] for s in index["sources"].values()) > 1000
    check_or_skip(spec, out)
    spec, tokens = build("tokens", {"tokens": 50000, "seed": 1})
    budget = json.loads((tokens / "index.json").read_text())["splits"]["train"]["tokens"]
    assert 45000 < budget <= 50000, budget
    check_or_skip(spec, tokens)  # the reference renders each candidate to fill the budget


MIX_SOURCES = [("alpaca", "alpaca_en_2000.json", {"prompt": "{instruction}\n\n{input}", "response": "output"}),
               ("zh", "alpaca_zh_500.jsonl", {"prompt": "{instruction}\n\n{input}", "response": "output"}),
               ("peps", "python_peps_40.jsonl", {"text": "text"})]


def mix_build(tokenmill_bin, tmp_path, repo, name, mix, pack=None, split=None, threads=2):
    data = repo / "Specs" / "data"
    spec = tmp_path / f"{name}.json"
    body = {"name": name, "sources": [{"name": n, "path": str(data / f), "map": m} for n, f, m in MIX_SOURCES],
            "dedup": {"exact": True}, "mix": mix, "tokenizer": "cl100k_base", "template": "chatml",
            "pack": pack or {"seq_len": 8192, "strategy": "best-fit"}, "output": {"dir": f"out-{name}"}}
    if split:
        body["split"] = split
    spec.write_text(json.dumps(body), encoding="utf-8")
    return spec, cli.build(tokenmill_bin, spec, tmp_path / f"out-{name}", threads=threads)


def test_mix_by_records_repeats_short_sources_and_subsamples_long_ones(tokenmill_bin, tmp_path, repo):
    """`mix` by records: every source gets its share of the total exactly (largest
    remainders), a short source repeats (whole passes, then a seeded partial pass), a long
    one is subsampled (`subsampled`); the report's achieved shares are the targets; the
    documents, counts and splits are the reference's (which computes the draws apart)."""
    mix = {"by": "records", "total": 3000, "proportions": {"alpaca": 0.2, "zh": 0.5, "peps": 0.3}, "seed": 5}
    spec, out = mix_build(tokenmill_bin, tmp_path, repo, "mixr", mix, split={"validation": 0.05, "seed": 2})
    report = json.loads((out / "report.json").read_text())
    got = {n: v["documents"] for n, v in report["sources"].items()}
    assert got == {"alpaca": 600, "zh": 1500, "peps": 900}, got
    assert report["mix"]["total"] == 3000 and report["mix"]["achieved_total"] == 3000
    for n, share in mix["proportions"].items():
        assert report["mix"]["sources"][n]["achieved"] == pytest.approx(share, abs=1e-12)
    assert report["sources"]["alpaca"]["subsampled"] > 1000 and report["sources"]["zh"]["subsampled"] == 0
    assert report["sources"]["peps"]["kept"] == 40  # 900 = 22 whole passes + 20 more
    # Every document of a repeated record lies in one split (one draw a record).
    summary = check_or_skip(spec, out)
    if summary:
        where = {}
        for split, sequences in summary["splits"].items():
            for seq in sequences:
                cu = list(seq["cu"])
                for a, b in zip(cu, cu[1:]):
                    where.setdefault(tuple(seq["tokens"][a:b]), set()).add(split)
        assert all(len(v) == 1 for v in where.values()), "a repeated record is in both splits"


def test_mix_by_tokens_fills_each_share_without_passing_it(tokenmill_bin, tmp_path, repo):
    mix = {"by": "tokens", "total": 400000, "proportions": {"alpaca": 1, "zh": 1, "peps": 2}, "seed": 1}
    spec, out = mix_build(tokenmill_bin, tmp_path, repo, "mixt", mix)
    report = json.loads((out / "report.json").read_text())
    targets = {"alpaca": 100000, "zh": 100000, "peps": 200000}
    for n, target in targets.items():
        tokens = report["sources"][n]["tokens"]
        # The partial pass stops at the first record that does not fit the remainder.
        assert target - 5000 < tokens <= target, (n, tokens)
        assert report["mix"]["sources"][n]["tokens"] == tokens
    check_or_skip(spec, out)
    # The same mix on one thread: the same bytes.
    _, one = mix_build(tokenmill_bin, tmp_path, repo, "mixt1", mix, threads=1)
    assert (out / "train-00000.tkm").read_bytes() == (one / "train-00000.tkm").read_bytes()


def test_mix_refuses_what_it_cannot_mean(tokenmill_bin, tmp_path, repo):
    bad = [({"proportions": {"alpaca": 1, "zh": 1}}, "source 'peps' has no share"),
           ({"proportions": {"alpaca": 1, "zh": 1, "peps": 1, "nope": 1}}, "unknown key"),
           ({"by": "bytes", "proportions": {"alpaca": 1, "zh": 1, "peps": 1}}, "expected \"records\" or \"tokens\""),
           ({"proportions": {"alpaca": 0, "zh": 0, "peps": 0}}, "sum to 0")]
    for mix, message in bad:
        spec = tmp_path / "bad.json"
        data = repo / "Specs" / "data"
        spec.write_text(json.dumps({"name": "bad", "sources": [{"name": n, "path": str(data / f), "map": m} for n, f, m in MIX_SOURCES],
                                    "mix": mix, "tokenizer": "cl100k_base", "template": "chatml",
                                    "pack": {"seq_len": 2048, "strategy": "best-fit"}, "output": {"dir": "out-bad"}}))
        r = cli.run(tokenmill_bin, "build", spec, check=False)
        assert r.returncode == 2 and message in r.stderr.decode(), (mix, r.stderr)


def test_report_packing_figures_are_what_the_shards_hold(demo_build):
    """report.json's `packing` per split — sequences, tokens, trained tokens, capacity,
    efficiency — recounted from the shards by the Python reader."""
    import numpy as np

    report = json.loads((demo_build / "report.json").read_text())
    index = json.loads((demo_build / "index.json").read_text())
    for split, figures in report["packing"].items():
        ds = Dataset(str(demo_build), split)
        tokens = sum(len(ds[i]["input_ids"]) for i in range(len(ds)))
        trained = sum(int(np.asarray(ds[i]["loss_mask"]).sum()) for i in range(len(ds)))
        assert (figures["sequences"], figures["tokens"], figures["trained_tokens"]) == (len(ds), tokens, trained)
        assert figures["capacity"] == len(ds) * index["seq_len"]
        assert abs(figures["efficiency"] - (tokens - figures["padding_tokens"]) / figures["capacity"]) < 1e-12
        assert 0.5 < figures["efficiency"] <= 1.0 and 0 < figures["trained_share"] < 1


def test_template_objects_are_checked_before_anything_runs(tokenmill_bin, tmp_path, repo):
    """A template object: a built-in with a loss scope, or a custom template; mistakes are
    spec errors (exit 2) naming the key."""
    data = repo / "Specs" / "data"
    bad = [({"name": "chatml", "loss": "every"}, "template.loss"),
           ({"name": "chatml", "user": {"before": "U: "}}, "a custom template needs a name of its own"),
           ({"name": "x", "eos": "sometimes"}, "template.eos"),
           ({"name": "x", "special_tokens": ["<a>", "<a>"]}, "template.special_tokens"),
           ({"name": "x", "user": {"before": {"loss": True}}}, "template.user.before.text"),
           ({"name": "x", "user": {"middle": "?"}}, "template.user.middle"),
           ({"loss": "last_turn"}, "template.name")]
    for template, message in bad:
        spec = tmp_path / "t.json"
        spec.write_text(json.dumps({"name": "t", "sources": [{"name": "a", "path": str(data / "alpaca_en_2000.json"),
                                                              "map": {"prompt": "instruction", "response": "output"}}],
                                    "template": template, "tokenizer": "gpt2", "pack": {"seq_len": 512},
                                    "output": {"dir": "out-t"}}))
        r = cli.run(tokenmill_bin, "plan", spec, check=False)
        assert r.returncode == 2 and message in r.stderr.decode(), (template, r.stderr)
    # A built-in name with a loss scope is that template: index.json says its name.
    spec.write_text(json.dumps({"name": "t", "sources": [{"name": "a", "path": str(data / "alpaca_en_2000.json"),
                                                          "map": {"prompt": "instruction", "response": "output"}}],
                                "template": {"name": "alpaca", "loss": "last_turn"}, "tokenizer": "gpt2",
                                "pack": {"seq_len": 512}, "output": {"dir": "out-t"}}))
    out = cli.build(tokenmill_bin, spec, tmp_path / "out-t")
    assert json.loads((out / "index.json").read_text())["template"] == "alpaca"


def test_a_record_that_trains_on_nothing_is_a_counted_filter(tokenmill_bin, tmp_path):
    """An empty response under a template whose end marker is not trained leaves an empty
    loss mask: filtered as `no_trained_tokens` (after dedup), never written; checked
    against the reference."""
    rows = [{"q": "Hi", "a": ""}, {"q": "Hi again", "a": "Hello!"}, {"q": "Hi", "a": ""}, {"q": "Bye", "a": "Bye."}]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({
        "name": "s", "sources": [{"name": "chat", "path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}],
        "filter": {"drop_empty_response": False, "allow_empty_turns": True},
        "template": {"name": "untrained-end", "eos": "none", "user": {"before": "U: ", "after": "\n"},
                     "assistant": {"before": "A: ", "after": {"text": "\n\n", "loss": False}}},
        "tokenizer": "gpt2", "pack": {"seq_len": 256, "strategy": "none"}, "output": {"dir": "out"}}))
    out = cli.build(tokenmill_bin, spec, tmp_path / "out")
    index = json.loads((out / "index.json").read_text())
    counts = index["sources"]["chat"]
    assert counts["kept"] == 2 and counts["exact_dup"] == 1 and counts["filtered"] == 1, counts
    assert counts["filter_reasons"] == {"no_trained_tokens": 1}
    from tokenmill import Dataset
    ds = Dataset(str(out), "train")
    assert len(ds) == 2 and all(ds[i]["loss_mask"].any() for i in range(len(ds)))
    check_or_skip(spec, out)


# -- near dedup and decontamination against the reference ---------------------------------------

# Prompts of distinct words, so that the shingle sets (5-word shingles) and Jaccard values
# are known by construction: n words give n - 4 shingles; changing the last word changes
# one shingle, J = (n - 5) / (n - 3); changing a run of k middle words changes k + 4.
BAKERY = ("please explain in plain words how a small village bakery can plan its weekly bread orders so "
          "that fresh loaves reach every family before breakfast without wasting flour sugar or the owner's "
          "limited time")
GARDEN = ("describe a simple rotation for four raised garden beds where tomatoes beans cabbage and carrots "
          "change places each spring keeping soil healthy while pests find fewer hosts year after year in our yard")
TEA = "请用三句话说明绿茶和红茶在加工方法香气口感以及适合饮用的季节上有什么主要区别"  # character shingles
# Eval prompts (decontaminate.field "turns"), each of 13 words or more, planted below.
EVAL_JSONL = [
    {"question_id": 1, "turns": ["What are three practical habits that help a remote team keep its weekly "
                                 "meetings short and useful?", "Name one tool."]},
    {"question_id": 2, "turns": ["Write a limerick about a lighthouse keeper who collects lost umbrellas from "
                                 "passing ships at night."]},
]
EVAL_JSON = [
    {"turns": ["Summarize the causes of the Dust Bowl in the American plains during the nineteen thirties briefly."]},
    {"turns": [" ".join(BAKERY.split()[:15])]},
]


def replace_words(text: str, start: int, words: list[str]) -> str:
    units = text.split()
    start %= len(units)
    units[start : start + len(words)] = words
    return " ".join(units)


def write_dedup_spec(folder: Path, strategy: str = "none") -> Path:
    """Two sources with planned near duplicates and eval prompts planted in chosen fields."""
    folder.mkdir(parents=True, exist_ok=True)
    q1, q3 = EVAL_JSONL[0]["turns"][0], EVAL_JSONL[1]["turns"][0]
    forum = [
        # line 1: kept, but holds an eval prompt (eval.json element 2)
        {"sys": "", "prompt": BAKERY, "response": "reply-a1"},
        # J 1.0 after case folding and White_Space runs
        {"sys": "", "prompt": "  " + BAKERY.upper().replace(" ", "   "), "response": "reply-a2"},
        {"sys": "", "prompt": replace_words(BAKERY, -1, ["patience"]), "response": "reply-a3"},  # last word
        {"sys": "", "prompt": GARDEN, "response": "reply-b1"},  # line 4: kept
        {"sys": "", "prompt": replace_words(GARDEN, -1, ["garden"]), "response": "reply-b2"},  # last word
        # eight middle words changed: J < 0.5
        {"sys": "", "prompt": replace_words(GARDEN, 8, "x1 x2 x3 x4 x5 x6 x7 x8".split()), "response": "reply-b3"},
        # an eval prompt in the response, in other case and spacing
        {"sys": "", "prompt": "How do remote teams stay focused?",
         "response": "Consider: " + q1.upper().replace(" ", "\n ") + " Then decide."},
        {"sys": "Remember: " + q3, "prompt": "Tell me something.", "response": "reply-d2"},  # in the system
        {"sys": "", "prompt": "Almost " + " ".join(q1.split()[:12]), "response": "reply-d3"},  # 12 words: not enough
        {"sys": "", "prompt": "", "response": "reply-e1"},  # no shingles: never a near duplicate
        {"sys": "", "prompt": "", "response": "reply-e2"},
        {"sys": "", "prompt": TEA, "response": "reply-c1"},
        {"sys": "", "prompt": TEA[:-1] + "吗", "response": "reply-c2"},  # one character changed
    ]
    with open(folder / "forum.jsonl", "w", encoding="utf-8") as f:
        for row in forum:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    wiki = [{"text": BAKERY}, {"text": "The Dust Bowl: " + EVAL_JSON[0]["turns"][0]}, {"text": GARDEN + " today"}]
    (folder / "wiki.json").write_text(json.dumps(wiki, indent=1), encoding="utf-8")
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n\n" for r in EVAL_JSONL), encoding="utf-8")
    (folder / "eval.json").write_text(json.dumps(EVAL_JSON, indent=2), encoding="utf-8")
    spec = {
        "name": "near-and-decontaminate",
        "sources": [
            {"name": "forum", "path": "forum.jsonl", "map": {"system": "sys", "prompt": "prompt", "response": "response"}},
            {"name": "wiki", "path": "wiki.json", "map": {"text": "text"}},
        ],
        "dedup": {"exact": True, "near": {"threshold": 0.8, "ngram": 5, "permutations": 128, "on": "prompt", "seed": 1}},
        "decontaminate": {"against": ["eval.jsonl", "eval.json"], "field": "turns", "ngram": 13},
        "tokenizer": "cl100k_base",
        "template": "chatml",
        "pack": {"seq_len": 1024, "strategy": strategy, "overflow": "split"},
        "output": {"dir": "out", "shard_tokens": 100000},
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dedup_build(tokenmill_bin, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("near-and-decontaminate")
    spec = write_dedup_spec(folder)
    return spec, cli.build(tokenmill_bin, spec, folder / "out")


def test_near_dedup_and_decontamination_match_the_reference(dedup_build):
    spec, out = dedup_build
    # The planted pairs are at the Jaccard they were made for (5-word shingles).
    forum = [json.loads(line) for line in (spec.parent / "forum.jsonl").read_text(encoding="utf-8").splitlines()]

    def jaccard(i: int, j: int) -> float:
        return near_dup_oracle.jaccard(*(near_dup_oracle.shingle_set(forum[k]["prompt"], 5) for k in (i, j)))

    n_bakery, n_garden = len(BAKERY.split()), len(GARDEN.split())
    assert jaccard(0, 1) == 1.0
    assert jaccard(0, 2) == (n_bakery - 5) / (n_bakery - 3) > 0.9
    assert jaccard(3, 4) == (n_garden - 5) / (n_garden - 3) > 0.9
    assert jaccard(3, 5) == (n_garden - 12 - 4) / (n_garden - 4 + 12) < 0.5
    assert jaccard(11, 12) > 0.9 and near_dup_oracle.mode_of(TEA) == "char"

    buildcheck.check_build(spec, out)  # documents, counts, dedup-clusters.jsonl, decontaminated.jsonl, report.json

    # What was planted, said plainly (the reference agrees, or check_build would have failed).
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    got = {name: {k: index["sources"][name][k] for k in ("near_dup", "decontaminated", "kept")} for name in ("forum", "wiki")}
    assert got == {"forum": {"near_dup": 4, "decontaminated": 3, "kept": 6},
                   "wiki": {"near_dup": 2, "decontaminated": 1, "kept": 0}}, got
    clusters = buildcheck.read_jsonl(out / "dedup-clusters.jsonl")
    assert [(c["kept"]["line"], [(r["source"], r["line"]) for r in c["removed"]]) for c in clusters] == [
        (1, [("forum", 2), ("forum", 3), ("wiki", 2)]),  # the kept record is the earliest, across sources
        (4, [("forum", 5), ("wiki", 8)]),  # forum line 6 (J < 0.5) stays; wiki's element 3 starts on line 8
        (12, [("forum", 13)]),  # Chinese, by characters
    ]
    hits = buildcheck.read_jsonl(out / "decontaminated.jsonl")
    assert [(h["source"], h["line"], h["against"], h["eval_line"]) for h in hits] == [
        ("forum", 1, "eval.json", 2),  # a cluster's kept record: its near duplicates count as near_dup
        ("forum", 7, "eval.jsonl", 1),  # in the response, other case and spacing
        ("forum", 8, "eval.jsonl", 3),  # in the system prompt; line 3 of the JSONL (line 2 is blank)
        ("wiki", 5, "eval.json", 1),
    ]


def mutate_index(out: Path, source: str, bucket: str) -> None:
    """One record moved from ``kept`` to ``bucket`` (or back), the sums still adding up."""
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    counts = index["sources"][source]
    step = -1 if counts[bucket] else 1
    counts[bucket] += step
    counts["kept"] -= step
    (out / "index.json").write_text(json.dumps(index), encoding="utf-8")


def edit_jsonl(path: Path, change) -> None:
    rows = buildcheck.read_jsonl(path)
    change(rows)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def add_candidate_pair(out: Path) -> None:
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    report["near_dedup"]["candidate_pairs"] += 1
    (out / "report.json").write_text(json.dumps(report), encoding="utf-8")


def keep_the_later_copy(spec: Path, out: Path) -> None:
    """A build that kept forum line 5 instead of line 4 (its earlier near duplicate): that
    document swapped in the shard, index.json's tokens and splits made to match."""
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    encoding, _ = buildcheck.encoding_for(index)
    template = reference.parse_template("chatml")
    renderer = reference.Renderer(template, encoding, buildcheck.check_special_tokens(index, template))
    forum = [json.loads(line) for line in (spec.parent / "forum.jsonl").read_text(encoding="utf-8").splitlines()]
    later = renderer.render(reference.Rec.instruction("forum", "", forum[4]["prompt"], forum[4]["response"]))
    sequences = buildcheck.read_sequences(out)
    k = next(k for k, s in enumerate(sequences) if "reply-b1" in encoding.decode(list(s["tokens"])))
    index["sources"]["forum"]["tokens"] += len(later.tokens) - len(sequences[k]["tokens"])
    records = [(list(s["tokens"]), list(s["mask"]), list(s["cu"][:-1])) for s in sequences]
    records[k] = (list(later.tokens), list(later.mask), [0])
    for shard in out.glob("train-*.tkm"):
        shard.unlink()
    written = shardwriter.write_dataset(out, {"train": [records]}, index["tokenizer"]["vocab_size"], chunk_records=4,
                                        strategy="none", seq_len=index["seq_len"])
    index["splits"]["train"] = written["splits"]["train"]
    (out / "index.json").write_text(json.dumps(index), encoding="utf-8")


MUTATIONS = {
    "index near_dup": (lambda spec, out: mutate_index(out, "forum", "near_dup"), "near_dup"),
    "index decontaminated": (lambda spec, out: mutate_index(out, "wiki", "decontaminated"), "decontaminated"),
    "clusters matched": (lambda spec, out: edit_jsonl(out / "dedup-clusters.jsonl",
                                                      lambda rows: rows[0]["removed"][2]["matched"].update(line=2)),
                         "dedup-clusters.jsonl cluster 0"),
    "clusters similarity": (lambda spec, out: edit_jsonl(out / "dedup-clusters.jsonl",
                                                         lambda rows: rows[1]["removed"][0].update(similarity=0.9)),
                            "dedup-clusters.jsonl cluster 1"),
    "cluster dropped": (lambda spec, out: edit_jsonl(out / "dedup-clusters.jsonl", lambda rows: rows.pop()),
                        "dedup-clusters.jsonl cluster 2"),
    "decontaminated eval line": (lambda spec, out: edit_jsonl(out / "decontaminated.jsonl",
                                                              lambda rows: rows[2].update(eval_line=2)),
                                 "decontaminated.jsonl line 3"),
    "candidate pairs": (lambda spec, out: add_candidate_pair(out), "candidate_pairs"),
    "later copy kept": (keep_the_later_copy, "documents"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_wrong_dedup_decision_fails_the_check(dedup_build, tmp_path, mutation):
    spec, out = dedup_build
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    change, message = MUTATIONS[mutation]
    change(spec, copy)
    with pytest.raises(AssertionError, match=message):
        buildcheck.check_build(spec, copy)


def test_eval_texts_are_normalized_as_records_are(tokenmill_bin, tmp_path):
    """A decomposed é or a control character in the eval file does not hide a match (the
    eval texts go through the build's normalizer); a negative list index in
    `decontaminate.field` is bad input (exit 65), not a crash."""
    words = "we went to the cafe\u0301 by the old harbour and ordered two cups of black coffee with sugar"
    rows = [{"q": words.replace("cafe\u0301", "caf\u00e9"), "a": "Nice."}, {"q": "Something else entirely here.", "a": "Ok."}]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "eval.jsonl").write_text(json.dumps({"turns": [words.replace("two", "two\u0007")]}) + "\n")
    body = {"name": "d", "sources": [{"name": "qa", "path": "rows.jsonl", "map": {"prompt": "q", "response": "a"}}],
            "decontaminate": {"against": ["eval.jsonl"], "field": "turns", "ngram": 13},
            "tokenizer": "gpt2", "template": "chatml", "pack": {"seq_len": 512}, "output": {"dir": "out"}}
    spec = tmp_path / "d.json"
    spec.write_text(json.dumps(body))
    out = cli.build(tokenmill_bin, spec, tmp_path / "out")
    assert json.loads((out / "index.json").read_text())["sources"]["qa"]["decontaminated"] == 1
    check_or_skip(spec, out)
    body["decontaminate"]["field"] = "turns.-1"
    spec.write_text(json.dumps(body))
    r = cli.run(tokenmill_bin, "build", spec, "--out", tmp_path / "out2", check=False)
    assert r.returncode == 65 and b"eval record has no string" in r.stderr, r.stderr


def test_the_tokenizers_bos_is_never_guessed(tokenmill_bin, tmp_path, repo):
    """A custom template's `"bos": true` takes the BOS the spec's tokenizer.bos names (a
    special token of the tokenizer); when nothing names one the build stops (exit 2)."""
    data = repo / "Specs" / "data"

    def spec(tokenizer):
        path = tmp_path / "b.json"
        path.write_text(json.dumps({
            "name": "b", "sources": [{"name": "a", "path": str(data / "alpaca_en_2000.json"),
                                      "map": {"prompt": "instruction", "response": "output"}}],
            "template": {"name": "with-bos", "bos": True, "user": {"before": "Q: ", "after": "\n"}, "assistant": {"before": "A: "}},
            "tokenizer": tokenizer, "pack": {"seq_len": 1024, "strategy": "none"}, "output": {"dir": "out-b"}}))
        return path

    r = cli.run(tokenmill_bin, "build", spec("gpt2"), check=False)
    assert r.returncode == 2 and b"tokenizer.bos" in r.stderr, r.stderr
    r = cli.run(tokenmill_bin, "build", spec({"path": "gpt2", "bos": "<s>"}), check=False)
    assert r.returncode == 2 and b"not a special token" in r.stderr, r.stderr
    out = cli.build(tokenmill_bin, spec({"path": "gpt2", "bos": "<|endoftext|>"}), tmp_path / "out-b")
    from tokenmill import Dataset
    first = Dataset(str(out), "train")[0]
    assert first["input_ids"][0] == 50256 and not first["loss_mask"][0]


def test_inspect_summarizes_a_build_with_its_counts(tokenmill_bin, demo_build):
    """`inspect DIR`: the splits and every source's counts as index.json gives them, the
    filter reasons by name."""
    out = cli.run(tokenmill_bin, "inspect", demo_build).stdout.decode()
    index = json.loads((demo_build / "index.json").read_text())
    for split, entry in index["splits"].items():
        assert f"{split}: {entry['records']} sequences, {entry['documents']} documents, {entry['tokens']} tokens" in out
    for name, counts in index["sources"].items():
        line = next(l for l in out.splitlines() if l.strip().startswith(f"source {name}:"))
        assert f"kept {counts['kept']}," in line and f"tokens {counts['tokens']}," in line
        for reason, n in counts["filter_reasons"].items():
            assert f"{reason} {n}" in line
    assert "filter_reasons {empty_response 4}" in out
