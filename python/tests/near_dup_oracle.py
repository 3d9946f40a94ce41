"""A brute-force oracle for near dedup and decontamination, written from the contract only.

Nothing here estimates: shingle sets are built exactly as the contract says, Jaccard is
computed on the exact sets, and :func:`similar_pairs` finds *every* pair of records whose
Jaccard is at least a bound (an exact set-similarity join, no MinHash, no LSH). The Swift
MinHash code is held to these numbers by ``test_near_dedup.py`` and by
``Benchmarks/bench_minhash.py``.

Shingling (the contract, "Shingling of a text"):

1. each scalar is replaced by its simple case fold (Python's ``casefold()`` when that is
   one scalar, else ``lower()`` when that is one scalar, else the scalar itself);
2. White_Space scalars separate units and are dropped;
3. a text is in *character mode* when more than half of its non-space scalars are in an
   unspaced script (CJK, kana, Thai, Lao, Myanmar, Khmer: :data:`UNSPACED_RANGES`),
   else in *word mode*;
4. word mode: shingle k = words k..k+n joined by one space; a text of 1..n-1 words is one
   shingle of all its words;
5. character mode: shingle k = non-space scalars k..k+n concatenated; fewer than n (and at
   least one) is one shingle of all of them;
6. a shingle's hash is xxh3-64 (seed 0) of its UTF-8 bytes; a record's set is the distinct
   hashes. A record with an empty set is never anybody's near duplicate.

LSH parameters (:func:`optimal_param`) minimise ``fp_weight * FP + fn_weight * FN``, the
integrals of the banding curve's false-positive area below the threshold and its
false-negative area above it, over every ``bands * rows <= permutations`` -- the same
objective and the same search order as datasketch's ``_optimal_param``; the integrals are
evaluated here by Gauss-Legendre quadrature, exact for these polynomials.

The generator (:func:`make_corpus`) turns real texts into groups of near duplicates by
word (or, for CJK text, character) drops, adjacent swaps and insertions at chosen rates,
deterministically from a seed.
"""

from __future__ import annotations

import json
import math
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash

REPO = Path(__file__).resolve().parents[2]

# -- shingling -----------------------------------------------------------------------------------

# The Unicode White_Space property (PropList.txt): separators, dropped.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_WORD = re.compile("[^" + re.escape(WHITE_SPACE) + "]+")

# Scripts written without spaces between words: a text mostly in these is shingled by characters.
UNSPACED_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana Phonetic Extensions
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x3134F),  # CJK Extensions B..G
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
)
_UNSPACED = re.compile(
    "[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in UNSPACED_RANGES) + "]"
)


_ASCII_NOT_WHITE_SPACE = re.compile("[\x1c-\x1f]")  # Python's isspace() says yes, White_Space no


def simple_fold(c: str) -> str:
    """One scalar's simple case fold, as the contract defines it through Python's str methods."""
    f = c.casefold()
    if len(f) == 1:
        return f
    low = c.lower()
    return low if len(low) == 1 else c


class _FoldTable(dict):
    """A ``str.translate`` table that computes (and remembers) each scalar's fold on first use."""

    def __missing__(self, cp: int) -> str:
        folded = simple_fold(chr(cp))
        self[cp] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    return text.translate(_FOLD)


def is_unspaced(c: str) -> bool:
    return bool(_UNSPACED.fullmatch(c))


def mode_of(text: str) -> str:
    """``"char"`` when more than half of the non-space scalars are in an unspaced script, else ``"word"``."""
    units = _WORD.findall(text)
    nonspace = sum(map(len, units))
    unspaced = len(_UNSPACED.findall(text))
    return "char" if nonspace and 2 * unspaced > nonspace else "word"


def shingles(text: str, n: int = 5) -> list[str]:
    """The shingles of ``text`` in order (repeats included), by the contract's rules."""
    if n < 1:
        raise ValueError("ngram must be >= 1")
    if text.isascii() and not _ASCII_NOT_WHITE_SPACE.search(text):
        # Shortcut, same result: in ASCII, simple folding is lower() and str.split() splits
        # on White_Space once U+001C..U+001F (which it also splits on) are ruled out.
        words = text.lower().split()
        unspaced = 0
    else:
        folded = fold(text)
        words = _WORD.findall(folded)
        unspaced = len(_UNSPACED.findall(folded))
    if not words:
        return []
    nonspace = sum(map(len, words))
    if 2 * unspaced > nonspace:
        chars = "".join(words)
        if len(chars) < n:
            return [chars]
        return [chars[k : k + n] for k in range(len(chars) - n + 1)]
    if len(words) < n:
        return [" ".join(words)]
    return [" ".join(words[k : k + n]) for k in range(len(words) - n + 1)]


def shingle_hash(shingle: str) -> int:
    return xxhash.xxh3_64_intdigest(shingle.encode("utf-8"))


def shingle_set(text: str, n: int = 5) -> frozenset[int]:
    """The distinct xxh3-64 hashes of ``text``'s shingles."""
    return frozenset(shingle_hash(s) for s in shingles(text, n))


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """|A ∩ B| / |A ∪ B|; 0 when either set is empty (an empty record matches nothing)."""
    a, b = set(a), set(b)
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# -- record texts (what `on` compares) ----------------------------------------------------------


def normalize(text: str) -> str:
    """Tokenmill's record normalization as the demo spec sets it: NFC, CRLF/CR -> LF, control
    characters other than \\n and \\t dropped, White_Space trimmed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    return text.strip(WHITE_SPACE)


def dedup_text(record: dict, on: str = "prompt") -> str:
    """The text near dedup compares for a normalized record.

    ``record`` holds ``text`` (a document) or ``prompt`` / ``response`` and optionally
    ``system`` (an instruction record). Fields are joined with "\\n"; since White_Space
    separates units and is otherwise dropped, whether an empty field adds a newline cannot
    change a shingle.
    """
    if "text" in record:
        return record["text"]
    if on == "prompt":
        return record["prompt"]
    if on == "response":
        return record["response"]
    if on == "all":
        return "\n".join(x for x in (record.get("system", ""), record["prompt"], record["response"]) if x)
    raise ValueError(f"on={on!r}")


# -- exact similarity join ----------------------------------------------------------------------


def similar_pairs(sets: Sequence[Iterable[int]], min_jaccard: float) -> dict[tuple[int, int], float]:
    """Every pair ``(i, j)``, ``i < j``, with ``jaccard(sets[i], sets[j]) >= min_jaccard``, and its Jaccard.

    Exact (prefix filtering): if J(x, y) >= t then |x ∩ y| >= ceil(t * max(|x|, |y|)), so
    once each set's elements are ordered by one global order (rarest first), the first
    ``|x| - ceil(t |x|) + 1`` elements of x and of y share at least one element. Every
    pair sharing a prefix element is then verified on the whole sets; pairs that share no
    prefix element cannot reach ``t``. With ``min_jaccard <= 0`` the prefix is the whole
    set and the result is every pair sharing any element. Empty sets pair with nothing.
    """
    t = float(min_jaccard)
    frozen = [frozenset(s) for s in sets]
    freq: dict[int, int] = defaultdict(int)
    for s in frozen:
        for h in s:
            freq[h] += 1
    index: dict[int, list[int]] = defaultdict(list)
    out: dict[tuple[int, int], float] = {}
    for j, s in enumerate(frozen):
        if not s:
            continue
        size = len(s)
        ordered = sorted(s, key=lambda h: (freq[h], h))
        # ceil(t * size), lowered by a hair against rounding: a longer prefix is always safe.
        need = max(1, int(np.ceil(t * size - 1e-9))) if t > 0 else 1
        prefix = ordered[: size - need + 1]
        candidates: set[int] = set()
        for h in prefix:
            bucket = index[h]
            candidates.update(bucket)
            bucket.append(j)
        for i in candidates:
            other = frozen[i]
            if t > 0 and min(size, len(other)) < t * max(size, len(other)) - 1e-9:
                continue  # size filter: J <= min/max
            inter = len(s & other)
            if inter == 0:
                continue
            sim = inter / (size + len(other) - inter)
            if sim >= t:
                out[(i, j)] = sim
    return out


def all_pairs_naive(sets: Sequence[Iterable[int]], min_jaccard: float) -> dict[tuple[int, int], float]:
    """The same as :func:`similar_pairs` by comparing every pair (quadratic; for checking it)."""
    frozen = [frozenset(s) for s in sets]
    out = {}
    for j in range(len(frozen)):
        for i in range(j):
            if frozen[i] and frozen[j]:
                sim = jaccard(frozen[i], frozen[j])
                if sim > 0 and sim >= min_jaccard:
                    out[(i, j)] = sim
    return out


# -- union-find and scoring ---------------------------------------------------------------------


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the root is the earliest member


def clusters_from_edges(n: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of size >= 2, each sorted, ordered by their first member."""
    uf = UnionFind(n)
    for a, b in edges:
        uf.union(a, b)
    groups: dict[int, list[int]] = defaultdict(list)
    for x in range(n):
        groups[uf.find(x)].append(x)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


@dataclass
class Score:
    """Recall over true pairs (same cluster counts as found) and precision over reported edges."""

    true_pairs: int
    found: int
    edges: int
    edges_true: int  # reported edges with true J >= hi
    edges_false: int  # reported edges with true J < lo
    edges_gray: int  # reported edges with lo <= J < hi: counted neither way
    missed: list[tuple[int, int, float]] = field(default_factory=list)
    wrong: list[tuple[int, int, float]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.true_pairs if self.true_pairs else 1.0

    @property
    def precision(self) -> float:
        judged = self.edges_true + self.edges_false
        return self.edges_true / judged if judged else 1.0

    def summary(self) -> str:
        return (
            f"recall {self.recall:.4f} ({self.found}/{self.true_pairs} pairs with J >= hi in one cluster), "
            f"precision {self.precision:.4f} ({self.edges_true} edges with J >= hi, {self.edges_false} with "
            f"J < lo, {self.edges_gray} in between not counted, of {self.edges})"
        )


def score(
    sets: Sequence[frozenset[int]],
    edges: Iterable[tuple[int, int]],
    truth: dict[tuple[int, int], float] | None = None,
    lo: float = 0.7,
    hi: float = 0.8,
) -> Score:
    """Score a tool's confirmed edges (pairs of indexes into ``sets``) against exact Jaccard.

    ``truth``: :func:`similar_pairs` ``(sets, hi)`` when already computed (pairs with J >= hi).
    """
    edges = [(min(a, b), max(a, b)) for a, b in edges]
    if truth is None:
        truth = similar_pairs(sets, hi)
    true_pairs = {p: s for p, s in truth.items() if s >= hi}
    uf = UnionFind(len(sets))
    for a, b in edges:
        uf.union(a, b)
    missed = [(a, b, s) for (a, b), s in true_pairs.items() if uf.find(a) != uf.find(b)]
    result = Score(len(true_pairs), len(true_pairs) - len(missed), len(edges), 0, 0, 0, missed=missed)
    for a, b in edges:
        sim = jaccard(sets[a], sets[b])
        if sim >= hi:
            result.edges_true += 1
        elif sim < lo:
            result.edges_false += 1
            result.wrong.append((a, b, sim))
        else:
            result.edges_gray += 1
    return result


# -- LSH parameters -----------------------------------------------------------------------------


def _band_integrals(threshold: float, bands: int, rows: np.ndarray, nodes: np.ndarray, weights: np.ndarray):
    """(FP, FN) areas for one band count and several row counts, by Gauss-Legendre quadrature.

    P(candidate | s) = 1 - (1 - s^r)^b.  FP = ∫_0^t P ds,  FN = ∫_t^1 (1 - P) ds.
    """
    # Map the reference nodes on [-1, 1] to [0, t] and [t, 1].
    lo_s = (nodes + 1) * (threshold / 2)
    hi_s = threshold + (nodes + 1) * ((1 - threshold) / 2)
    r = rows[:, None].astype(float)
    p_lo = 1 - (1 - lo_s[None, :] ** r) ** bands
    p_hi = 1 - (1 - hi_s[None, :] ** r) ** bands
    fp = (p_lo * weights).sum(axis=1) * (threshold / 2)
    fn = ((1 - p_hi) * weights).sum(axis=1) * ((1 - threshold) / 2)
    return fp, fn


def optimal_param(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising ``fp_weight * FP + fn_weight * FN`` over ``bands * rows <= num_perm``.

    Searched bands 1.., rows 1.. with the first minimum kept, as datasketch's ``_optimal_param``.
    The integrands are polynomials of degree <= num_perm, which an (num_perm // 2 + 1)-node
    Gauss-Legendre rule integrates exactly (up to floating point).
    """
    if not 0 < threshold <= 1 or num_perm < 1:
        raise ValueError("threshold in (0, 1], num_perm >= 1")
    nodes, weights = np.polynomial.legendre.leggauss(max(64, num_perm // 2 + 8))
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // b + 1)
        fp, fn = _band_integrals(threshold, b, rows, nodes, weights)
        err = fp * fp_weight + fn * fn_weight
        k = int(np.argmin(err))  # first minimum within this b
        if err[k] < best:
            best, opt = float(err[k]), (b, int(rows[k]))
    return opt


def lsh_error(
    threshold: float, bands: int, rows: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> float:
    """The objective :func:`optimal_param` minimises, for one (bands, rows)."""
    nodes, weights = np.polynomial.legendre.leggauss(max(64, bands * rows // 2 + 8))
    fp, fn = _band_integrals(threshold, bands, np.array([rows]), nodes, weights)
    return float(fp[0] * fp_weight + fn[0] * fn_weight)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """P(two records with Jaccard ``similarity`` share at least one band)."""
    return 1 - (1 - similarity**rows) ** bands


def confirm_probability(similarity: float, confirm: float, permutations: int) -> float:
    """P(the estimated Jaccard, equal values out of ``permutations``, is >= ``confirm``).

    Each signature position agrees with probability ``similarity``, independently: a binomial tail.
    """
    need = max(0, math.ceil(confirm * permutations - 1e-9))
    return sum(
        math.comb(permutations, k) * similarity**k * (1 - similarity) ** (permutations - k)
        for k in range(need, permutations + 1)
    )


def expected_found(similarity: float, bands: int, rows: int, confirm: float, permutations: int) -> float:
    """About how often a MinHash-LSH pass finds one pair directly (candidate, then confirmed).

    The two events are positively correlated (a shared band means ``rows`` equal values), so
    the product is a slight underestimate; it is for planning, not for asserting.
    """
    return candidate_probability(similarity, bands, rows) * confirm_probability(
        similarity, confirm, permutations
    )


# -- decontamination ----------------------------------------------------------------------------


def contaminated(train_texts: Sequence[str], eval_texts: Sequence[str], n: int = 13) -> dict[int, list[int]]:
    """Training texts sharing an ``n``-shingle (by hash) with an eval text -> the eval indexes shared with."""
    owners: dict[int, list[int]] = defaultdict(list)
    for e, text in enumerate(eval_texts):
        for h in shingle_set(text, n):
            owners[h].append(e)
    out: dict[int, list[int]] = {}
    for i, text in enumerate(train_texts):
        hit = sorted({e for h in shingle_set(text, n) for e in owners.get(h, ())})
        if hit:
            out[i] = hit
    return out


# -- near-duplicate generator -------------------------------------------------------------------

# Edit rates (fraction of units touched) and how often each is drawn. For 5-gram word
# shingles one edit changes up to 5 shingles, so small rates already land near the 0.8
# threshold; the list reaches far below it to give plenty of pairs in [0.3, 0.7).
DEFAULT_RATES = (
    (0.0, 1),
    (0.002, 2),
    (0.005, 3),
    (0.01, 4),
    (0.015, 3),
    (0.02, 3),
    (0.03, 3),
    (0.05, 3),
    (0.08, 3),
    (0.12, 2),
    (0.2, 2),
)


@dataclass
class Doc:
    text: str
    group: int  # index of the base text it came from
    rate: float  # edit rate applied to the base (0 for the base itself)
    lang: str  # "en" or "zh"
    base: bool


def perturb(units: list[str], rate: float, rng: random.Random, vocabulary: Sequence[str]) -> list[str]:
    """Apply ``round(rate * len(units))`` edits (at least one when rate > 0): each a drop, an
    adjacent swap or an insertion of a vocabulary unit, chosen uniformly."""
    out = list(units)
    edits = max(1, round(rate * len(units))) if rate > 0 else 0
    for _ in range(edits):
        op = rng.choice(("drop", "swap", "insert"))
        if op == "drop" and len(out) > 1:
            del out[rng.randrange(len(out))]
        elif op == "swap" and len(out) > 1:
            k = rng.randrange(len(out) - 1)
            out[k], out[k + 1] = out[k + 1], out[k]
        else:
            out.insert(rng.randrange(len(out) + 1), rng.choice(vocabulary))
    return out


def _split(text: str, lang: str) -> list[str]:
    if lang == "zh":
        return list("".join(_WORD.findall(text)))
    return _WORD.findall(text)


def _join(units: list[str], lang: str) -> str:
    return "".join(units) if lang == "zh" else " ".join(units)


def make_corpus(
    bases: Sequence[tuple[str, str]],
    seed: int = 1,
    rates: Sequence[tuple[float, int]] = DEFAULT_RATES,
    variants: tuple[int, int] = (0, 3),
    shuffle: bool = True,
) -> list[Doc]:
    """Each ``(text, lang)`` base plus ``variants`` (a random count in that range) edited copies.

    Every copy is edited from its base with a rate drawn from ``rates`` (weighted), so copies
    of one base form a group whose pairwise Jaccard spans the range. ``lang`` "zh" edits
    characters (what character-mode shingling sees), "en" words. The documents are shuffled
    (with the seed) so that a base is not always the earliest of its group.
    """
    rng = random.Random(seed)
    vocab = {"en": [], "zh": []}
    for text, lang in bases:
        vocab[lang].extend(_split(text, lang))
    for lang in vocab:
        vocab[lang] = sorted(set(vocab[lang])) or ["x"]
    rate_values = [r for r, _ in rates]
    rate_weights = [w for _, w in rates]
    docs: list[Doc] = []
    for g, (text, lang) in enumerate(bases):
        units = _split(text, lang)
        docs.append(Doc(_join(units, lang), g, 0.0, lang, True))
        for _ in range(rng.randint(*variants)):
            rate = rng.choices(rate_values, rate_weights)[0]
            docs.append(Doc(_join(perturb(units, rate, rng, vocab[lang]), lang), g, rate, lang, False))
    if shuffle:
        rng.shuffle(docs)
    return docs


def demo_bases(
    english: int = 600, chinese: int = 200, min_en_words: int = 25, min_zh_chars: int = 40, seed: int = 1
) -> list[tuple[str, str]]:
    """Real base texts from Specs/data: Alpaca records (instruction, input, output) in English and Chinese."""
    rng = random.Random(seed)
    data = REPO / "Specs" / "data"
    en = []
    for r in json.loads((data / "alpaca_en_2000.json").read_text(encoding="utf-8")):
        text = "\n".join(x for x in (r["instruction"], r["input"], r["output"]) if x)
        if len(_WORD.findall(text)) >= min_en_words:
            en.append(text)
    zh = []
    for line in (data / "alpaca_zh_500.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            text = "\n".join(x for x in (r["instruction"], r["input"], r["output"]) if x)
            if len("".join(_WORD.findall(text))) >= min_zh_chars and mode_of(text) == "char":
                zh.append(text)
    en = sorted(set(en))
    zh = sorted(set(zh))
    rng.shuffle(en)
    rng.shuffle(zh)
    return [(t, "en") for t in en[:english]] + [(t, "zh") for t in zh[:chinese]]


def jaccard_histogram(values: Iterable[float], edges=(0, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0)) -> dict[str, int]:
    counts = dict.fromkeys([f"[{a},{b})" for a, b in zip(edges, edges[1:])] + ["1.0"], 0)
    for v in values:
        if v >= 1.0:
            counts["1.0"] += 1
            continue
        for a, b in zip(edges, edges[1:]):
            if a <= v < b:
                counts[f"[{a},{b})"] += 1
                break
    return counts
