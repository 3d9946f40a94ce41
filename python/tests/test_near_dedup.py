"""Near dedup and decontamination of ``tokenmill build``, held to the brute-force oracle.

The oracle (near_dup_oracle.py) shingles each record by the contract and computes exact
Jaccard over every pair; nothing here looks at signatures. The acceptance bar is the
issue's: at threshold 0.8 with 128 permutations, recall >= 0.95 over pairs whose true
Jaccard is >= 0.8 (a pair counts as found when both records end up in one cluster) and
precision >= 0.95 over the confirmed edges of dedup-clusters.jsonl (each removed record
and the record it was matched to), edges with a true Jaccard in [0.7, 0.8) counted
neither way.

Needs the binary (``TOKENMILL_BIN`` or ``<repo>/.build/release/tokenmill``); the test on
``../shared/data`` also needs that folder and skips, saying so, without it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import buildcheck
import cli
import near_dup_oracle as o
import pytest
from shared_texts import read_bytes, shared_data_dir

pytestmark = pytest.mark.binary

THRESHOLD, PERMUTATIONS, NGRAM = 0.8, 128, 5
# The weights of the LSH objective (Tokenmill weighs false negatives 0.9, see
# docs/DEDUP.md; datasketch defaults to 0.5/0.5): bands and rows are
# optimal_param(threshold, permutations, FP_WEIGHT, FN_WEIGHT).
FP_WEIGHT, FN_WEIGHT = 0.1, 0.9
RECALL, PRECISION = 0.95, 0.95
# Candidates are confirmed at the threshold less 1.5 standard errors of a 128-value
# estimate (docs/DEDUP.md): 0.747 at 0.8/128.
CONFIRM = THRESHOLD - 1.5 * math.sqrt(THRESHOLD * (1 - THRESHOLD) / PERMUTATIONS)
LO, HI = 0.7, 0.8  # precision: edges with true J >= HI are right, < LO wrong, between not counted
NORMALIZE = {"unicode": "NFC", "newlines": True, "strip_control": True, "trim": True}
MARKER = re.compile(r"reply-(\d{6})")


# -- helpers -----------------------------------------------------------------------------------


def near(threshold=THRESHOLD, permutations=PERMUTATIONS, ngram=NGRAM, on="prompt", **extra) -> dict:
    return {
        "threshold": threshold,
        "ngram": ngram,
        "permutations": permutations,
        "on": on,
        "seed": 1,
        **extra,
    }


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_spec(folder: Path, sources: list[dict], near_config=None, decontaminate=None, exact=False) -> Path:
    """A spec over ``sources`` (name, path, map) with plain template, gpt2, one record a sequence."""
    dedup: dict = {"exact": exact}
    if near_config is not None:
        dedup["near"] = near_config
    spec = {
        "name": "near-dedup-test",
        "sources": sources,
        "normalize": NORMALIZE,
        "dedup": dedup,
        "tokenizer": "gpt2",
        "template": "plain",
        "pack": {"seq_len": 8192, "strategy": "none", "overflow": "split"},
        "output": {"dir": "out", "shard_tokens": 1 << 20, "zstd_level": 1},
    }
    if decontaminate is not None:
        spec["decontaminate"] = decontaminate
    path = folder / "spec.json"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def instruction_source(name: str, path: str) -> dict:
    return {"name": name, "path": path, "map": {"prompt": "prompt", "response": "response"}}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def key(entry: dict) -> tuple[str, int]:
    return (entry["source"], entry["line"])


def kept_markers(out: Path) -> Counter:
    """The reply-NNNNNN markers in every document of every split, decoded from the shards."""
    index = read_json(out / "index.json")
    encoding, _ = buildcheck.encoding_for(index)
    found: Counter = Counter()
    for split in index["splits"]:
        for seq in buildcheck.read_sequences(out, split):
            found.update(int(m) for m in MARKER.findall(encoding.decode(list(seq["tokens"]))))
    return found


def run_build(binary: Path, spec: Path, out: Path, threads: int = 2) -> Path:
    return cli.build(binary, spec, out, threads=threads)


@dataclass
class Corpus:
    """Records written to sources in spec order; ``keys[i]`` is record i's (source, line)."""

    texts: list[str]
    keys: list[tuple[str, int]]
    sets: list[frozenset[int]]

    def __post_init__(self):
        self.where = {k: i for i, k in enumerate(self.keys)}


def write_sources(folder: Path, named_texts: list[tuple[str, list[str]]]) -> tuple[list[dict], Corpus]:
    """One JSONL source per (name, texts); record i of the whole corpus answers reply-i."""
    sources, texts, keys = [], [], []
    for name, items in named_texts:
        rows = []
        for line, text in enumerate(items, 1):
            rows.append({"prompt": text, "response": f"reply-{len(texts):06d}"})
            texts.append(text)
            keys.append((name, line))
        write_jsonl(folder / "data" / f"{name}.jsonl", rows)
        sources.append(instruction_source(name, f"data/{name}.jsonl"))
    return sources, Corpus(texts, keys, [o.shingle_set(t, NGRAM) for t in texts])


def edges_of(clusters: list[dict], corpus: Corpus) -> list[tuple[int, int]]:
    return [(corpus.where[key(r["matched"])], corpus.where[key(r)]) for c in clusters for r in c["removed"]]


def check_clusters_file(clusters: list[dict], source_order: list[str], corpus: Corpus | None = None,
                        confirm: float = CONFIRM) -> None:
    """The structure dedup-clusters.jsonl promises, whatever the similarities."""
    rank = {name: k for k, name in enumerate(source_order)}

    def order(entry):
        return (rank[entry["source"]], entry["line"])

    seen: set[tuple[str, int]] = set()
    for c in clusters:
        kept, removed = c["kept"], c["removed"]
        assert removed, f"a cluster without removed records: {c}"
        members = [kept, *removed]
        keys = [key(m) for m in members]
        assert not seen & set(keys), f"records in two clusters: {sorted(seen & set(keys))}"
        seen.update(keys)
        assert [order(r) for r in removed] == sorted(order(r) for r in removed), f"removed out of order: {c}"
        assert order(kept) < order(removed[0]), f"the kept record is not the earliest: {c}"
        uf = o.UnionFind(len(members))
        slot = {k: i for i, k in enumerate(keys)}
        for i, r in enumerate(removed, 1):
            assert key(r["matched"]) in slot and key(r["matched"]) != key(r), f"bad matched record in {c}"
            assert confirm - 1e-6 <= r["similarity"] <= 1 + 1e-9, f"similarity {r['similarity']} in {c}"
            uf.union(i, slot[key(r["matched"])])
            if corpus is not None:
                true = o.jaccard(
                    corpus.sets[corpus.where[key(r)]], corpus.sets[corpus.where[key(r["matched"])]]
                )
                assert abs(true - r["similarity"]) <= 0.25, (
                    f"{key(r)} ~ {key(r['matched'])}: estimated {r['similarity']}, true Jaccard {true:.3f}"
                )
        assert len({uf.find(i) for i in range(len(members))}) == 1, f"matched edges do not connect {c}"
    assert [order(c["kept"]) for c in clusters] == sorted(order(c["kept"]) for c in clusters), (
        "clusters out of order"
    )


def check_counts(out: Path, field: str, expected: Counter, sources: list[str]) -> None:
    """index.json and report.json count ``field`` per source as ``expected``; kept adds up."""
    for name in ("index.json", "report.json"):
        doc = read_json(out / name)
        for source in sources:
            got = doc["sources"][source]
            assert got[field] == expected[source], (
                f"{name} sources.{source}.{field}: {got[field]}, want {expected[source]}"
            )
            lost = sum(got.get(k, 0) for k in ("filtered", "exact_dup", "near_dup", "decontaminated"))
            assert got["kept"] == got["read"] - lost, f"{name} sources.{source}: kept does not add up: {got}"


def bands_rows(out: Path) -> tuple[int, int]:
    nd = read_json(out / "report.json")["near_dedup"]
    return nd["bands"], nd["rows"]


def describe_misses(score: o.Score) -> str:
    hist = o.jaccard_histogram([s for _, _, s in score.missed], edges=(0.8, 0.85, 0.9, 0.95, 1.0))
    wrong = o.jaccard_histogram([s for _, _, s in score.wrong], edges=(0, 0.3, 0.5, 0.6, 0.7))
    return f"{score.summary()}\n  missed pairs by true J: {hist}\n  wrong edges by true J: {wrong}"


def expected_recall(truth: dict, bands: int, rows: int) -> float:
    """What a MinHash-LSH with these bands/rows, confirming at THRESHOLD, finds directly (for messages)."""
    values = [o.expected_found(s, bands, rows, THRESHOLD, PERMUTATIONS) for s in truth.values() if s >= HI]
    return sum(values) / len(values) if values else 1.0


# -- the generated corpus --------------------------------------------------------------------------


@dataclass
class Generated:
    corpus: Corpus
    spec: Path
    out: Path
    clusters: list[dict]
    truth: dict
    sources: list[str]
    lang: list[str]


@pytest.fixture(scope="module")
def generated(tokenmill_bin, tmp_path_factory) -> Generated:
    """English and Chinese Alpaca texts with edited copies, in two sources, deduplicated at 0.8/128."""
    docs = o.make_corpus(o.demo_bases(english=600, chinese=250, seed=11), seed=11)
    for d in docs:
        d.text = o.normalize(d.text)
    folder = tmp_path_factory.mktemp("generated")
    order = [d for d in docs if d.lang == "en"] + [d for d in docs if d.lang == "zh"]
    sources, corpus = write_sources(
        folder,
        [
            ("gen_en", [d.text for d in order if d.lang == "en"]),
            ("gen_zh", [d.text for d in order if d.lang == "zh"]),
        ],
    )
    spec = write_spec(folder, sources, near(), exact=True)
    out = run_build(tokenmill_bin, spec, folder / "out", threads=2)
    assert (out / "dedup-clusters.jsonl").is_file(), "a build with dedup.near wrote no dedup-clusters.jsonl"
    clusters = read_jsonl(out / "dedup-clusters.jsonl")
    truth = o.similar_pairs(corpus.sets, HI)
    return Generated(corpus, spec, out, clusters, truth, ["gen_en", "gen_zh"], [d.lang for d in order])


def test_generated_pairs_recall_and_precision(generated):
    g = generated
    edges = edges_of(g.clusters, g.corpus)
    score = o.score(g.corpus.sets, edges, g.truth, LO, HI)
    b, r = bands_rows(g.out)
    hint = (
        f"\n  bands x rows {b} x {r}: a MinHash-LSH confirming at {THRESHOLD} is expected to find "
        f"{expected_recall(g.truth, b, r):.3f} of these pairs directly"
    )
    print(f"\ngenerated: {score.summary()}")
    assert score.true_pairs >= 400, f"too few true pairs to judge recall: {score.true_pairs}"
    assert score.edges_true + score.edges_false >= 300, f"too few judged edges: {score.summary()}"
    assert score.recall >= RECALL, describe_misses(score) + hint
    assert score.precision >= PRECISION, describe_misses(score) + hint
    # Character mode on its own (Chinese records): a word-only shingler finds nothing here.
    zh = {i for i, lang in enumerate(g.lang) if lang == "zh"}
    zh_truth = {p: s for p, s in g.truth.items() if p[0] in zh}
    zh_score = o.score(g.corpus.sets, [e for e in edges if e[0] in zh], zh_truth, LO, HI)
    print(f"Chinese: {zh_score.summary()}")
    assert zh_score.true_pairs >= 100, f"too few Chinese pairs: {zh_score.summary()}"
    assert zh_score.recall >= RECALL, "Chinese (character shingles): " + describe_misses(zh_score)
    assert zh_score.precision >= PRECISION, "Chinese (character shingles): " + describe_misses(zh_score)


def test_generated_clusters_file_and_counts(generated):
    g = generated
    check_clusters_file(g.clusters, g.sources, g.corpus)
    removed = Counter(r["source"] for c in g.clusters for r in c["removed"])
    check_counts(g.out, "near_dup", removed, g.sources)
    assert bands_rows(g.out) == o.optimal_param(THRESHOLD, PERMUTATIONS, FP_WEIGHT, FN_WEIGHT)


def test_removed_records_are_not_in_the_shards(generated):
    g = generated
    removed = {g.corpus.where[key(r)] for c in g.clusters for r in c["removed"]}
    assert removed, "nothing was removed"
    found = kept_markers(g.out)
    assert found and max(found.values()) == 1, "a record appears twice in the shards"
    want = set(range(len(g.corpus.texts))) - removed
    assert set(found) == want, (
        f"{len(set(found) & removed)} removed records are in the shards (e.g. "
        f"{[g.corpus.keys[i] for i in sorted(set(found) & removed)[:5]]}); "
        f"{len(want - set(found))} kept records are missing"
    )


def test_generated_build_is_the_references(generated):
    """The Python reference (reference.py, near_duplicates) makes the same decisions on
    ~1,500 records with hundreds of clusters, chains among them: index.json counts, the
    documents, every line of dedup-clusters.jsonl and report.json's pair counts."""
    buildcheck.check_build(generated.spec, generated.out)


def test_thread_count_does_not_change_the_clusters(tokenmill_bin, generated, tmp_path):
    one = run_build(tokenmill_bin, generated.spec, tmp_path / "one", threads=1)
    for name in ("dedup-clusters.jsonl", "index.json"):
        assert (one / name).read_bytes() == (generated.out / name).read_bytes(), (
            f"{name} differs with --threads 1 vs 2"
        )


# -- the shared near-duplicate data ----------------------------------------------------------------


def _alpaca(path: Path) -> list[dict]:
    return json.loads(read_bytes(path).decode("utf-8"))


def test_shared_data_recall_and_precision(tokenmill_bin, tmp_path):
    """Real near duplicates: Stanford Alpaca vs alpaca-gpt4 (same instructions) and Chinese translations.

    Sources (../shared/data/MANIFEST.md): alpaca52k_en (46,000) and llamafactory_alpaca_en_demo
    (alpaca-gpt4, 887 of its instructions recur); the first 2,000 of alpaca52k_zh, the zh side
    of alpaca_chinese_v3 parts 0-1 (a re-translation of the same 2,000), the first 2,000 of
    alpaca_zh_carbonz0 (an independent translation) and llamafactory_alpaca_zh_demo. Compared on
    the prompt (instruction + input), as a user deduplicating instruction data would.
    """
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data is absent (set TOKENMILL_SHARED_DATA to the data folder)")
    a = data / "alpaca"
    names = {
        "alpaca52k_en": (_alpaca(a / "alpaca52k_en.json.zst"), "instruction", "input"),
        "alpaca_gpt4_en": (_alpaca(a / "llamafactory_alpaca_en_demo.json"), "instruction", "input"),
        "alpaca52k_zh": (_alpaca(a / "alpaca52k_zh.json.zst")[:2000], "instruction", "input"),
        "alpaca_zh_v3": (
            _alpaca(a / "alpaca_chinese_v3_part0.json") + _alpaca(a / "alpaca_chinese_v3_part1.json"),
            "zh_instruction",
            "zh_input",
        ),
        "alpaca_zh_carbonz0": (_alpaca(a / "alpaca_zh_carbonz0_part00.json")[:2000], "instruction", "input"),
        "alpaca_gpt4_zh": (_alpaca(a / "llamafactory_alpaca_zh_demo.json"), "instruction", "input"),
    }
    named = []
    for name, (rows, inst, inp) in names.items():
        texts = [o.normalize(f"{r[inst]}\n\n{r[inp]}") for r in rows]
        named.append((name, texts))
    sources, corpus = write_sources(tmp_path, named)
    spec = write_spec(tmp_path, sources, near(), exact=False)
    out = run_build(tokenmill_bin, spec, tmp_path / "out", threads=2)
    clusters = read_jsonl(out / "dedup-clusters.jsonl")
    check_clusters_file(clusters, [n for n, _ in named], corpus)
    truth = o.similar_pairs(corpus.sets, HI)
    score = o.score(corpus.sets, edges_of(clusters, corpus), truth, LO, HI)
    print(f"\nshared data: {score.summary()}")
    assert score.true_pairs >= 2000 and score.edges_true + score.edges_false >= 1000, score.summary()
    assert score.recall >= RECALL and score.precision >= PRECISION, describe_misses(score)
    zh = {i for i, k in enumerate(corpus.keys) if "_zh" in k[0]}
    zh_score = o.score(
        corpus.sets,
        [e for e in edges_of(clusters, corpus) if e[0] in zh],
        {p: s for p, s in truth.items() if p[0] in zh},
        LO,
        HI,
    )
    assert zh_score.true_pairs >= 1000, zh_score.summary()
    assert zh_score.recall >= RECALL and zh_score.precision >= PRECISION, "Chinese: " + describe_misses(
        zh_score
    )
    removed = Counter(r["source"] for c in clusters for r in c["removed"])
    check_counts(out, "near_dup", removed, [n for n, _ in named])


# -- hand-made cases: spec order, shingling by script, `on` ----------------------------------------

LONG_A = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle that was "
    "written by his grandfather fifty years ago, and describe what he decides to do next"
)
LONG_B = (
    "Explain the difference between a list and a tuple in Python, give two examples of when "
    "each one is the better choice, and mention how they behave when used as dictionary keys"
)


def clusters_as_sets(clusters: list[dict]) -> list[set[tuple[str, int]]]:
    return [{key(c["kept"]), *(key(r) for r in c["removed"])} for c in clusters]


def test_kept_record_is_the_earliest_in_spec_order(tokenmill_bin, tmp_path):
    # Identical prompts (J = 1), different responses: never exact duplicates, always near ones.
    sources, corpus = write_sources(
        tmp_path,
        [
            (
                "first",
                ["A note on planting tomatoes early in the spring", "unrelated two", LONG_A, "three", LONG_A],
            ),
            ("second", [LONG_A, LONG_B, LONG_A.upper()]),
        ],
    )
    spec = write_spec(tmp_path, sources, near())
    out = run_build(tokenmill_bin, spec, tmp_path / "out")
    clusters = read_jsonl(out / "dedup-clusters.jsonl")
    check_clusters_file(clusters, ["first", "second"], corpus)
    assert clusters_as_sets(clusters) == [{("first", 3), ("first", 5), ("second", 1), ("second", 3)}]
    assert key(clusters[0]["kept"]) == ("first", 3)
    assert [key(r) for r in clusters[0]["removed"]] == [("first", 5), ("second", 1), ("second", 3)]
    assert all(r["similarity"] == pytest.approx(1.0) for r in clusters[0]["removed"])
    check_counts(out, "near_dup", Counter({"first": 1, "second": 2}), ["first", "second"])
    assert kept_markers(out) == Counter({0: 1, 1: 1, 2: 1, 3: 1, 6: 1})
    buildcheck.check_build(spec, out)


# Each group: texts that the contract's shingling makes identical (J = 1) or far apart.
SCRIPT_CASES = [
    # Case folding and every kind of White_Space between words.
    "The Quick Brown Fox jumps over the lazy dog near the old river bank today",
    "the quick brown fox JUMPS OVER THE LAZY DOG near the old river bank today",
    "The\tQuick\nBrown\u00a0Fox\u3000jumps  over\u2028the lazy\u2003dog near the old river bank today",
    # Simple folding keeps ß: with full folding these two would be identical.
    "Heute ist die lange Straße hier sehr breit und schön",
    "heute ist die lange strasse hier sehr breit und schön",
    # Chinese: character shingles, spaces do not count.
    "请解释一下光合作用的基本过程以及它对地球生态系统的重要意义",
    "请 解释 一下 光合作用 的 基本 过程 以及 它 对 地球 生态系统 的 重要 意义",
    # Japanese and Thai are unspaced scripts too.
    "今日はとても良い天気ですね散歩に行きましょう",
    "今日は とても 良い 天気 ですね 散歩に 行きましょう",
    "สวัสดีครับวันนี้อากาศดีมากไปเดินเล่นกัน",
    "สวัสดี ครับ วันนี้ อากาศ ดี มาก ไป เดินเล่น กัน",
    # Hangul is written with spaces: word shingles, so removing the spaces changes every word.
    "안녕하세요 여러분 오늘 날씨가 정말 좋네요 우리 같이 산책 갑시다",
    "안녕하세요여러분 오늘날씨가 정말좋네요 우리같이 산책갑시다",
    # Mostly Latin with a few ideographs: word mode (not a per-record flag), so 北京 != 北 京.
    "We visited 北京 and 上海 last summer with our whole family and some good friends",
    "We visited 北 京 and 上 海 last summer with our whole family and some good friends",
    # Fewer words than ngram: one shingle of all words.
    "Tell me a joke",
    "tell   me a JOKE",
    "Tell me a joke please",
]


def test_shingling_follows_each_records_script(tokenmill_bin, tmp_path):
    sources, corpus = write_sources(tmp_path, [("cases", SCRIPT_CASES)])
    truth = o.similar_pairs(corpus.sets, 0.0)
    # The cases are built so that every pair is identical or far apart: the outcome is certain.
    assert all(s == 1.0 or s <= 0.5 for s in truth.values()), truth
    want = [{("cases", a + 1), ("cases", b + 1)} for (a, b), s in truth.items() if s == 1.0]
    want = [set().union(*[w for w in want if w & c]) for c in want]
    want = sorted({frozenset(w) for w in want}, key=min)
    assert [sorted(w) for w in want] == [
        [("cases", 1), ("cases", 2), ("cases", 3)],
        [("cases", 6), ("cases", 7)],
        [("cases", 8), ("cases", 9)],
        [("cases", 10), ("cases", 11)],
        [("cases", 16), ("cases", 17)],
    ]
    spec = write_spec(tmp_path, sources, near())
    out = run_build(tokenmill_bin, spec, tmp_path / "out")
    clusters = read_jsonl(out / "dedup-clusters.jsonl")
    check_clusters_file(clusters, ["cases"], corpus)
    got = sorted((sorted(c) for c in clusters_as_sets(clusters)), key=min)
    assert got == [sorted(w) for w in want]
    buildcheck.check_build(spec, out)


P1 = LONG_A
R1 = (
    "The keeper read the faded letter twice under the lamp, then rowed out at dawn to the reef "
    "his grandfather had drawn on the back of the page, hoping to find what was hidden there"
)

R2 = (
    "Lists can change after they are created while tuples cannot, so only tuples of hashable "
    "values may serve as keys in a dictionary, and lists suit collections that grow over time"
)


@pytest.mark.parametrize(
    "on, groups",
    [
        ("prompt", [{("inst", 1), ("inst", 2), ("inst", 4), ("docs", 1)}]),
        ("response", [{("inst", 1), ("inst", 3), ("inst", 4)}]),
        ("all", [{("inst", 1), ("inst", 4)}, {("docs", 2), ("inst", 5)}]),
    ],
)
def test_on_picks_what_is_compared(tokenmill_bin, tmp_path, on, groups):
    rows = [
        {"prompt": P1, "response": R1},  # 1
        {"prompt": P1, "response": LONG_B},  # 2: same prompt
        {
            "prompt": "Continue the story of the keeper in a few sentences for a children's book",
            "response": R1,
        },  # 3
        {"prompt": P1, "response": R1.replace(" ", "  ")},  # 4: same words, not the same bytes
        {"prompt": LONG_B, "response": R2},  # 5: its all-text is docs 2's
    ]
    write_jsonl(tmp_path / "data" / "inst.jsonl", rows)
    write_jsonl(tmp_path / "data" / "docs.jsonl", [{"text": P1}, {"text": LONG_B + "\n" + R2}])
    sources = [
        instruction_source("inst", "data/inst.jsonl"),
        {"name": "docs", "path": "data/docs.jsonl", "map": {"text": "text"}},
    ]
    if on == "response":
        sources = sources[:1]  # what `response` means for a document is not part of the contract
    # The oracle agrees with the groups written above (every pair identical or far apart).
    records = [(("inst", k), r) for k, r in enumerate(rows, 1)]
    if len(sources) == 2:
        records += [(("docs", 1), {"text": P1}), (("docs", 2), {"text": LONG_B + "\n" + R2})]
    sets = [o.shingle_set(o.dedup_text(r, on), NGRAM) for _, r in records]
    pairs = o.similar_pairs(sets, 0.0)
    assert all(s == 1.0 or s <= 0.5 for s in pairs.values()), pairs
    oracle = o.clusters_from_edges(len(sets), [p for p, s in pairs.items() if s == 1.0])
    assert sorted(({records[i][0] for i in c} for c in oracle), key=min) == sorted(groups, key=min)
    spec = write_spec(tmp_path, sources, near(on=on))  # exact dedup would take record 4 (docs/DEDUP.md)
    out = run_build(tokenmill_bin, spec, tmp_path / "out")
    clusters = read_jsonl(out / "dedup-clusters.jsonl")
    check_clusters_file(clusters, [s["name"] for s in sources])
    assert sorted(clusters_as_sets(clusters), key=min) == sorted(groups, key=min)
    buildcheck.check_build(spec, out)


# -- bands and rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold, permutations", [(0.5, 64), (0.9, 256), (0.7, 32), (0.85, 128)])
def test_bands_and_rows_come_from_the_threshold(tokenmill_bin, tmp_path, threshold, permutations):
    sources, _ = write_sources(tmp_path, [("cases", SCRIPT_CASES)])
    spec = write_spec(tmp_path, sources, near(threshold=threshold, permutations=permutations))
    out = run_build(tokenmill_bin, spec, tmp_path / "out")
    want = o.optimal_param(threshold, permutations, FP_WEIGHT, FN_WEIGHT)
    assert bands_rows(out) == want
    try:
        from datasketch.lsh import _optimal_param
    except ImportError:
        return
    assert bands_rows(out) == _optimal_param(threshold, permutations, FP_WEIGHT, FN_WEIGHT)


# -- decontamination --------------------------------------------------------------------------------

EVAL_EN = (
    "Describe in detail how the water cycle moves water between the oceans the atmosphere "
    "and the land and why it matters for farming"
)
EVAL_ZH = "请详细描述水循环如何在海洋大气和陆地之间移动水分以及它为什么对农业很重要"


def test_decontamination_drops_exactly_the_records_sharing_an_ngram(tokenmill_bin, tmp_path):
    words = EVAL_EN.split()
    train = [
        {"prompt": "Question: " + " ".join(words[2:15]) + " ?", "response": "It evaporates."},  # 1: 13 words
        {"prompt": "Question: " + " ".join(words[3:15]) + " ?", "response": "Twelve words only."},  # 2: 12
        {"prompt": "Tell me about clouds.", "response": "They are " + " ".join(words[5:18]).upper()},  # 3
        {"prompt": "An unrelated question about the moon and its phases", "response": "It waxes."},  # 4
        {"prompt": "他问：" + EVAL_ZH[4:17] + "吗？", "response": "是的，这个问题很好。"},  # 5: 13 characters
        {"prompt": "他问：" + EVAL_ZH[4:16] + "吗？", "response": "是的，这个问题很好。"},  # 6: 12 characters
        {"prompt": "请介绍一下：", "response": " ".join(EVAL_ZH[18:31]) + "。"},  # 7: 13 characters, spaced
        {"prompt": " ".join(words[0:12]), "response": "ok"},  # 8: 12 words, then a new field
    ]
    for k, row in enumerate(train):
        row["response"] += f" reply-{k:06d}"
    write_jsonl(tmp_path / "data" / "train.jsonl", train)
    evals = [
        {"instruction": "What is the capital of France and why", "output": "Paris."},
        {"instruction": EVAL_EN, "output": "..."},
        {"instruction": EVAL_ZH, "output": "……"},
    ]
    write_jsonl(tmp_path / "eval.jsonl", evals)
    texts = [o.dedup_text(reference_record(r), "all") for r in train]
    oracle = o.contaminated(texts, [e["instruction"] for e in evals], 13)
    assert sorted(oracle) == [0, 2, 4, 6], oracle  # the cases are what they say
    spec = write_spec(
        tmp_path,
        [instruction_source("train", "data/train.jsonl")],
        decontaminate={"against": ["eval.jsonl"], "field": "instruction", "ngram": 13},
    )
    out = run_build(tokenmill_bin, spec, tmp_path / "out")
    listed = read_jsonl(out / "decontaminated.jsonl")
    assert sorted(e["line"] for e in listed) == [1, 3, 5, 7], listed
    for e in listed:
        k = e["line"] - 1
        assert e["source"] == "train" and e["against"].endswith("eval.jsonl"), e
        assert e["eval_line"] - 1 in oracle[k], (
            f"{e}: the record shares nothing with eval line {e['eval_line']}"
        )
        ngram = o.shingle_set(e["ngram"], 13)
        shared = o.shingle_set(texts[k], 13) & o.shingle_set(evals[e["eval_line"] - 1]["instruction"], 13)
        assert len(ngram) == 1 and ngram <= shared, f"{e}: 'ngram' is not a shared 13-shingle"
    check_counts(out, "decontaminated", Counter({"train": 4}), ["train"])
    assert set(kept_markers(out)) == {1, 3, 5, 7}
    buildcheck.check_build(spec, out)  # decontaminated.jsonl line by line, counts, documents


def reference_record(row: dict) -> dict:
    return {"prompt": o.normalize(row["prompt"]), "response": o.normalize(row["response"])}


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, name",
    [
        ({"threshold": 0}, "threshold"),
        ({"threshold": -0.2}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "0.8"}, "threshold"),
        ({"permutations": 0}, "permutations"),
        ({"permutations": -8}, "permutations"),
        ({"permutations": 100}, "permutations"),
        ({"permutations": 1032}, "permutations"),
        ({"ngram": 0}, "ngram"),
        ({"on": "everything"}, "on"),
    ],
)
def test_bad_near_settings_exit_2_naming_the_key(tokenmill_bin, tmp_path, change, name):
    sources, _ = write_sources(tmp_path, [("cases", SCRIPT_CASES[:4])])
    spec = write_spec(tmp_path, sources, {**near(), **change})
    result = cli.run(tokenmill_bin, "build", spec, "--out", tmp_path / "out", "--quiet", check=False)
    said = result.stderr.decode(errors="replace")
    assert result.returncode == 2, f"{change}: exit {result.returncode}: {said}"
    assert name in said, f"{change}: the message does not name {name!r}: {said}"


@pytest.mark.parametrize(
    "change, name", [({"ngram": 0}, "ngram"), ({"against": ["missing.jsonl"]}, "missing.jsonl")]
)
def test_bad_decontaminate_settings_exit_2(tokenmill_bin, tmp_path, change, name):
    sources, _ = write_sources(tmp_path, [("cases", SCRIPT_CASES[:4])])
    write_jsonl(tmp_path / "eval.jsonl", [{"instruction": EVAL_EN}])
    spec = write_spec(
        tmp_path,
        sources,
        decontaminate={"against": ["eval.jsonl"], "field": "instruction", "ngram": 13, **change},
    )
    result = cli.run(tokenmill_bin, "build", spec, "--out", tmp_path / "out", "--quiet", check=False)
    said = result.stderr.decode(errors="replace")
    assert result.returncode == 2 and name in said, f"{change}: exit {result.returncode}: {said}"


@pytest.mark.parametrize(
    "change", [{"threshold": 1.0}, {"permutations": 1024}, {"permutations": 8}, {"ngram": 1}]
)
def test_edge_settings_are_accepted(tokenmill_bin, tmp_path, change):
    sources, _ = write_sources(tmp_path, [("cases", SCRIPT_CASES)])
    spec = write_spec(tmp_path, sources, {**near(), **change})
    out = run_build(tokenmill_bin, spec, tmp_path / "out")
    settings = {**near(), **change}
    t, p = settings["threshold"], settings["permutations"]
    confirm = t - 1.5 * math.sqrt(t * (1 - t) / p)
    assert read_json(out / "report.json")["near_dedup"]["confirmed_at"] == pytest.approx(confirm)
    check_clusters_file(read_jsonl(out / "dedup-clusters.jsonl"), ["cases"], confirm=confirm)
    buildcheck.check_build(spec, out)
