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
