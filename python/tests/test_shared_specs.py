"""The specs for the real sources in ../shared/data (Specs/shared/) compile cleanly and read
the row counts their comment states. Skipped when ../shared is absent."""
from __future__ import annotations

import json

import pytest

import cli
from shared_texts import shared_data_dir

pytestmark = [pytest.mark.binary, pytest.mark.shared_data]

EXPECTED = {  # source -> (read, rejected), as each spec's comment says
    "alpaca": {"alpaca_en": (46000, 0), "alpaca_zh": (46000, 0)},
    "sharegpt": {"sharegpt": (3970, 30)},
    "dialogsum": {"dialogsum_dev": (500, 0), "dialogsum_test": (500, 0)},
    "empathetic_dialogues": {"ed_valid": (12077, 1)},
    "pku_saferlhf": {"pku_safe": (5188, 0)},
    "instructionwild": {"iw_seed_en": (429, 0), "iw_seed_zh": (429, 0), "iw_user": (675, 2)},
    "align_anything": {"aa_en": (54837, 0), "aa_zh": (13689, 0)},
    "chat_messages": {"chat_messages": (3467, 3)},
    "aa52k_sample": {"aa_en": (54837, 0)},
    "alpaca52k": {"alpaca_en": (46000, 0)},
    "pku_saferlhf_preference": {"pku_preference": (32, 0)},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_source_specs_compile_with_their_counts(name, tokenmill_bin, repo, tmp_path):
    if shared_data_dir() is None:
        pytest.skip("../shared (next to the repository) is absent: the specs for its sources are not compiled")
    spec = repo / "Specs" / "shared" / f"{name}.json"
    out = cli.build(tokenmill_bin, spec, tmp_path / "out")
    sources = json.loads((out / "index.json").read_text())["sources"]
    got = {k: (v["read"], v["rejected"]) for k, v in sources.items()}
    assert got == EXPECTED[name]
    comment = json.loads(spec.read_text())["comment"]
    for read, rejected in EXPECTED[name].values():
        assert f"{read:,}" in comment, f"the comment of {name} does not state {read:,} rows"
    rejects = (out / "rejects.jsonl").read_text().splitlines()
    assert len(rejects) == sum(r for _, r in EXPECTED[name].values())
    cli.run(tokenmill_bin, "verify", out)


def test_the_align_anything_52k_comparison_pair(tokenmill_bin, repo, tmp_path):
    """The 52K sample keeps exactly 52,000 records and both sides are decontaminated
    against Just-Eval, with the counts their comments state."""
    if shared_data_dir() is None:
        pytest.skip("../shared (next to the repository) is absent: the comparison specs are not compiled")
    for name, source, kept, decontaminated in (("aa52k_sample", "aa_en", 52000, 10), ("alpaca52k", "alpaca_en", 45946, 1)):
        spec = repo / "Specs" / "shared" / f"{name}.json"
        out = cli.build(tokenmill_bin, spec, tmp_path / name)
        counts = json.loads((out / "index.json").read_text())["sources"][source]
        assert (counts["kept"], counts["decontaminated"]) == (kept, decontaminated), counts
        comment = json.loads(spec.read_text())["comment"]
        assert f"{kept:,}" in comment and f"{counts['tokens']:,}" in comment
        assert len((out / "decontaminated.jsonl").read_text().splitlines()) == decontaminated


def retarget(spec_path, tmp_path, **changes):
    """A copy of a spec with its source paths made absolute and `changes` applied."""
    spec = json.loads(spec_path.read_text())
    for src in spec["sources"]:
        src["path"] = str((spec_path.parent / src["path"]).resolve())
    spec.update(changes)
    spec["output"] = {"dir": str(tmp_path / "out")}
    p = tmp_path / spec_path.name
    p.write_text(json.dumps(spec))
    return p, spec


def test_pku_preference_picks_the_safer_response_when_it_is_safe(tokenmill_bin, repo, tmp_path):
    """The pick, checked against Python reading the same rows: each kept pair is the prompt
    with response_{safer_response_id}, and a row is filtered as unsafe_response exactly when
    that response is not safe."""
    if shared_data_dir() is None:
        pytest.skip("../shared (next to the repository) is absent")
    from test_ingest_formats import sequences

    spec_path, spec = retarget(repo / "Specs" / "shared" / "pku_saferlhf_preference.json", tmp_path,
                               pack={"strategy": "none", "seq_len": 8192}, dedup={"exact": False})
    rows = json.loads(open(spec["sources"][0]["path"], encoding="utf-8").read())
    kept = [{"prompt": r["prompt"], "response": r[f"response_{int(r['safer_response_id'])}"]}
            for r in rows if r[f"is_response_{int(r['safer_response_id'])}_safe"] in (True, "true", "True")]
    out = cli.build(tokenmill_bin, spec_path, tmp_path / "got")
    counts = json.loads((out / "index.json").read_text())["sources"]["pku_preference"]
    assert counts["kept"] == len(kept) and counts["filter_reasons"] == {"unsafe_response": len(rows) - len(kept)}
    (tmp_path / "want.jsonl").write_text("".join(json.dumps(k) + "\n" for k in kept), encoding="utf-8")
    want_spec = dict(spec, sources=[{"name": "pku_preference", "path": str(tmp_path / "want.jsonl"), "map": {"prompt": "prompt", "response": "response"}}],
                     output={"dir": str(tmp_path / "want")})
    (tmp_path / "want.json").write_text(json.dumps(want_spec))
    assert sequences(out) == sequences(cli.build(tokenmill_bin, tmp_path / "want.json", tmp_path / "want"))


def test_empathetic_dialogues_commas_are_decoded(tokenmill_bin, repo, tmp_path):
    """`replace` turns every `_comma_` of the CSV back into a comma: the built conversations
    hold no `_comma_` and exactly the commas Python's csv + str.replace give."""
    if shared_data_dir() is None:
        pytest.skip("../shared (next to the repository) is absent")
    import csv

    from test_ingest_formats import sequences
    from tiktoken_offline import get_encoding

    spec_path, spec = retarget(repo / "Specs" / "shared" / "empathetic_dialogues.json", tmp_path,
                               pack={"strategy": "none", "seq_len": 8192}, dedup={"exact": False}, normalize=False)
    with open(spec["sources"][0]["path"], encoding="utf-8", newline="") as f:
        utterances = [row["utterance"] for row in csv.DictReader(f)]
    out = cli.build(tokenmill_bin, spec_path, tmp_path / "got")
    enc = get_encoding("cl100k_base", extra_special=(("<|im_start|>", 100264), ("<|im_end|>", 100265)))
    text = "".join(enc.decode(s) for s in sequences(out))
    assert "_comma_" not in text
    # All rows but the one rejected (a conversation of one utterance) are in the shards.
    decoded = [u.replace("_comma_", ",") for u in utterances]
    assert text.count(",") >= sum(u.count(",") for u in decoded) - max(u.count(",") for u in decoded)
