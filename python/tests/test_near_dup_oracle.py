"""The near-dedup oracle (near_dup_oracle.py) checked on hand-made cases; needs no binary.

The oracle is what test_near_dedup.py and Benchmarks/bench_minhash.py hold Tokenmill to, so
it is tested on its own: shingles of hand-written strings, Jaccard of hand-made sets, the
exact similarity join against an all-pairs loop, the LSH parameters against datasketch's
``_optimal_param`` (when datasketch is installed) and the generator's determinism and range.
"""

from __future__ import annotations

import random

import near_dup_oracle as o
import pytest
import xxhash

# -- case folding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, folded",
    [
        ("Hello WORLD", "hello world"),
        ("ß", "ß"),  # full folding would give "ss": simple folding keeps it
        ("\u1e9e", "ß"),  # capital sharp s: casefold "ss" (2), lower "ß" (1)
        ("Σς", "σσ"),
        ("\u212a", "k"),  # Kelvin sign
        ("\u0130", "\u0130"),  # I with dot: casefold and lower are both 2 scalars
        ("\ufb01", "\ufb01"),  # fi ligature: casefold "fi" (2), lower itself
        ("ΆΈ", "άέ"),
        ("ＡＢＣ", "ａｂｃ"),  # full-width Latin
        ("中文", "中文"),
    ],
)
def test_simple_case_fold(raw, folded):
    assert o.fold(raw) == folded
    assert "".join(o.simple_fold(c) for c in raw) == folded


def test_fold_is_scalar_by_scalar():
    text = "Straße İstanbul ΣΑΣ ﬁnal"
    assert len(o.fold(text)) == len(text)


# -- shingles ----------------------------------------------------------------------------------


def test_word_shingles():
    text = "The quick brown fox jumps over the lazy dog"
    assert o.shingles(text, 5) == [
        "the quick brown fox jumps",
        "quick brown fox jumps over",
        "brown fox jumps over the",
        "fox jumps over the lazy",
        "jumps over the lazy dog",
    ]
    assert o.shingles(text, 1) == "the quick brown fox jumps over the lazy dog".split()
    assert o.shingles(text, 9) == ["the quick brown fox jumps over the lazy dog"]
    assert o.shingles(text, 10) == ["the quick brown fox jumps over the lazy dog"]


def test_white_space_separates_and_other_scalars_do_not():
    spaced = "a\tb\nc\x0bd\x0ce\rf g\x85h\xa0i\u1680j\u2000k\u200al\u2028m\u2029n\u202fo\u205fp\u3000q"
    assert o.shingles(spaced, 1) == list("abcdefghijklmnopq")
    # U+200B ZERO WIDTH SPACE and U+001C..U+001F (Python's isspace) are not White_Space.
    assert o.shingles("a\u200bb c\x1cd", 1) == ["a\u200bb", "c\x1cd"]
    assert o.shingles("  one   two\n\nthree  ", 5) == ["one two three"]


def test_short_and_empty_texts():
    assert o.shingles("Hello World", 5) == ["hello world"]
    assert o.shingles("", 5) == []
    assert o.shingles(" \n\t\u3000", 5) == []
    assert o.shingle_set("", 5) == frozenset()
    assert o.shingles("一二", 5) == ["一二"]
    with pytest.raises(ValueError):
        o.shingles("x", 0)


def test_character_shingles():
    assert o.shingles("我爱北京天安门", 5) == ["我爱北京天", "爱北京天安", "北京天安门"]
    # Spaces carry nothing in character mode.
    assert o.shingles("我 爱 北京\n天安门", 5) == o.shingles("我爱北京天安门", 5)
    # Case folds in character mode too; Latin letters are units like any other scalar.
    assert o.shingles("AB我爱北京", 5) == ["ab我爱北", "b我爱北京"]
    assert o.shingles("你好", 1) == ["你", "好"]


@pytest.mark.parametrize(
    "text, mode",
    [
        ("我爱北京天安门", "char"),
        ("AB我爱北京", "char"),  # 4 of 6 non-space scalars
        ("ab我爱", "word"),  # exactly half is not more than half
        ("ab 我爱", "word"),
        ("こんにちは世界", "char"),  # kana + ideographs
        ("ｶﾀｶﾅ", "char"),  # half-width katakana
        ("สวัสดีครับ", "char"),  # Thai
        ("ສະບາຍດີ", "char"),  # Lao
        ("မင်္ဂလာပါ", "char"),  # Myanmar
        ("សួស្តី", "char"),  # Khmer
        ("\U00020000\U00020001\U00020002", "char"),  # Extension B
        ("안녕하세요 여러분", "word"),  # Hangul is written with spaces
        ("Привет мир", "word"),
        ("Hello 世界", "word"),  # 5 Latin vs 2 CJK
        ("", "word"),
    ],
)
def test_mode_by_script(text, mode):
    assert o.mode_of(text) == mode
    got = o.shingles(text, 2)
    if text and mode == "char":
        assert all(" " not in s for s in got)


def test_shingle_hash_is_xxh3_64_of_utf8():
    # Known answer: XXH3_64bits("") with seed 0.
    assert o.shingle_hash("") == 0x2D06800538D394C2
    assert o.shingle_hash("hello world") == xxhash.xxh3_64_intdigest(b"hello world")
    assert o.shingle_set("a b a b a b", 2) == frozenset({o.shingle_hash("a b"), o.shingle_hash("b a")})


def test_dedup_text_follows_on():
    rec = {"system": "Be brief.", "prompt": "What is two plus two", "response": "Four."}
    assert o.dedup_text(rec, "prompt") == "What is two plus two"
    assert o.dedup_text(rec, "response") == "Four."
    assert o.shingles(o.dedup_text(rec, "all"), 1) == "be brief. what is two plus two four.".split()
    assert o.dedup_text({"text": "doc"}, "response") == "doc"


# -- Jaccard and the similarity join -------------------------------------------------------------


def test_jaccard_of_hand_made_sets():
    assert o.jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    assert o.jaccard({1, 2, 3, 4, 5}, {1, 2, 3, 4}) == 0.8
    assert o.jaccard({1}, {1}) == 1.0
    assert o.jaccard({1}, {2}) == 0.0
    assert o.jaccard(set(), set()) == 0.0
    assert o.jaccard(set(), {1}) == 0.0


def test_similar_pairs_boundaries_are_inclusive():
    sets = [set(range(10)), set(range(7)), set(range(8)), set(range(10, 20)), set()]
    pairs = o.similar_pairs(sets, 0.7)
    assert pairs == {(0, 1): 0.7, (0, 2): 0.8, (1, 2): 0.875}
    assert o.similar_pairs(sets, 0.8) == {(0, 2): 0.8, (1, 2): 0.875}
    assert o.similar_pairs(sets, 0.0) == pairs  # J > 0 only; the empty set pairs with nothing


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5, 0.7, 0.75, 0.8, 0.9, 1.0])
def test_similar_pairs_equals_all_pairs_on_random_sets(threshold):
    rng = random.Random(7)
    base = [set(rng.sample(range(60), rng.randint(1, 25))) for _ in range(40)]
    sets = list(base)
    for s in base:  # near copies at every similarity
        t = set(s)
        for _ in range(rng.randint(0, 6)):
            t.symmetric_difference_update({rng.randrange(60)})
        sets.append(t)
    sets.append(set())
    assert o.similar_pairs(sets, threshold) == o.all_pairs_naive(sets, threshold)


def test_similar_pairs_equals_all_pairs_on_generated_text():
    docs = o.make_corpus(o.demo_bases(english=50, chinese=20, seed=3), seed=3)[:150]
    sets = [o.shingle_set(d.text) for d in docs]
    for threshold in (0.0, 0.5, 0.7, 0.8):
        assert o.similar_pairs(sets, threshold) == o.all_pairs_naive(sets, threshold)


# -- union-find and scoring ---------------------------------------------------------------------


def test_clusters_from_edges():
    assert o.clusters_from_edges(7, [(5, 3), (3, 1), (6, 4)]) == [[1, 3, 5], [4, 6]]
    assert o.clusters_from_edges(3, []) == []


def test_score_counts_recall_by_cluster_and_precision_by_edge():
    sets = [
        frozenset(range(10)),  # 0
        frozenset(range(9)),  # 1: J(0,1) = 0.9
        frozenset(range(1, 10)),  # 2: J(0,2) = 0.9, J(1,2) = 0.8
        frozenset(range(100, 110)),  # 3
        frozenset(range(100, 107)),  # 4: J(3,4) = 0.7  (gray)
        frozenset(range(200, 210)),  # 5
        frozenset(range(205, 215)),  # 6: J(5,6) = 1/3 (false)
    ]
    # (1,2) is found through 0 although no edge joins them directly.
    s = o.score(sets, [(0, 1), (2, 0), (3, 4), (5, 6)])
    assert (s.true_pairs, s.found) == (3, 3)
    assert (s.edges_true, s.edges_false, s.edges_gray) == (2, 1, 1)
    assert s.recall == 1.0 and s.precision == 2 / 3
    s = o.score(sets, [(0, 1)])
    assert s.found == 1 and sorted(p[:2] for p in s.missed) == [(0, 2), (1, 2)]


# -- LSH parameters -----------------------------------------------------------------------------

# datasketch 2.0's _optimal_param(t, n, 0.5, 0.5), recorded so that the check also runs without it.
KNOWN = {
    (0.8, 128): (9, 13),
    (0.8, 8): (1, 7),
    (0.8, 16): (2, 8),
    (0.8, 64): (5, 11),
    (0.8, 256): (17, 15),
    (0.8, 512): (28, 18),
}


@pytest.mark.parametrize("key", sorted(KNOWN))
def test_optimal_param_known_answers(key):
    assert o.optimal_param(*key) == KNOWN[key]


def test_optimal_param_equals_datasketch():
    lsh = pytest.importorskip("datasketch.lsh")
    cases = [
        (t, n) for n in (8, 24, 64, 128, 200) for t in (0.1, 0.3, 0.5, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
    ]
    cases += [(0.8, 96), (0.6, 256)]  # the rest, up to 1024, were compared once offline (slow in datasketch)
    cases += [(0.7, 128, 0.2, 0.8), (0.8, 128, 0.1, 0.9), (0.9, 64, 0.8, 0.2)]
    wrong = []
    for case in cases:
        t, n, *w = case
        fp, fn = w or (0.5, 0.5)
        want = lsh._optimal_param(t, n, fp, fn)
        got = o.optimal_param(t, n, fp, fn)
        if got != want:
            wrong.append(f"{case}: oracle {got}, datasketch {want}")
    assert not wrong, "\n".join(wrong)


def test_optimal_param_objective_is_minimal_among_neighbours():
    b, r = o.optimal_param(0.8, 128)
    assert b * r <= 128
    # At the threshold the banding curve is well below 1/2 for 0.5/0.5 weights (FP area is cheap).
    assert o.candidate_probability(0.8, b, r) < 0.5 < o.candidate_probability(0.9, b, r)


def test_expected_found_is_a_probability_rising_with_similarity():
    values = [o.expected_found(s, 9, 13, 0.8, 128) for s in (0.5, 0.7, 0.8, 0.9, 1.0)]
    assert values == sorted(values)
    assert values[-1] == pytest.approx(1.0)
    assert 0.1 < o.confirm_probability(0.8, 0.8, 128) < 0.6


# -- decontamination ----------------------------------------------------------------------------


def test_contaminated_shares_an_ngram():
    words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen".split()
    eval_texts = [" ".join(words), "我们今天一起去公园散步然后吃午饭再回家"]
    train = [
        "prefix " + " ".join(words[:13]) + " suffix",  # shares a 13-gram
        "prefix " + " ".join(words[1:13]) + " suffix",  # 12 words only
        " ".join(w.upper() for w in words[1:14]),  # a 13-gram, case folded
        "他说我们今天一起去公园散步然后吃",  # 15 characters: a 13-character shingle
        "我们今天一起去公园散步然",  # 12 characters: one short shingle, not equal
    ]
    assert o.contaminated(train, eval_texts, 13) == {0: [0], 2: [0], 3: [1]}


# -- generator ----------------------------------------------------------------------------------


def test_perturb_rates():
    rng = random.Random(1)
    units = [f"w{k}" for k in range(200)]
    assert o.perturb(units, 0.0, rng, ["x"]) == units
    edited = o.perturb(units, 0.05, rng, ["x"])
    assert edited != units and abs(len(edited) - len(units)) <= 10
    assert o.perturb(["a"], 0.001, random.Random(2), ["x"]) != ["a"]  # at least one edit


def test_generator_is_deterministic_and_covers_the_range():
    bases = o.demo_bases(english=200, chinese=60, seed=5)
    assert bases == o.demo_bases(english=200, chinese=60, seed=5)
    docs = o.make_corpus(bases, seed=5)
    again = o.make_corpus(bases, seed=5)
    assert [(d.text, d.group, d.rate) for d in docs] == [(d.text, d.group, d.rate) for d in again]
    assert [d.text for d in o.make_corpus(bases, seed=6)] != [d.text for d in docs]
    assert {d.lang for d in docs} == {"en", "zh"}
    assert all(o.mode_of(d.text) == ("char" if d.lang == "zh" else "word") for d in docs)
    sets = [o.shingle_set(d.text) for d in docs]
    sims = o.similar_pairs(sets, 0.3).values()
    high = sum(1 for s in sims if s >= 0.8)
    middle = sum(1 for s in sims if 0.3 <= s < 0.7)
    assert high >= 150 and middle >= 150, o.jaccard_histogram(sims)


def test_ascii_shortcut_equals_the_general_path():
    texts = ["Plain ASCII text, with\tTABS\nand  LINES\x0b\x0c\r end", "a\x1cb c\x1fd e f g h", "   ", "X"]
    for text in texts:
        words = o._WORD.findall(o.fold(text))
        want = [" ".join(words[k : k + 2]) for k in range(len(words) - 1)] if len(words) >= 2 else words
        assert o.shingles(text, 2) == want, text
        assert o.shingles(text + "é", 2)[:-1] == want[:-1]  # the same text through the general path
