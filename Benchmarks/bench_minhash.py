#!/usr/bin/env python3
"""MinHash near dedup: Tokenmill next to rensa and datasketch on the same documents, in one run.

Two measurements, each tool on the same --docs documents, one thread:
  signatures  shingle + hash + sign every document. Tokenmill starts from the text; the
              peers start from the *same shingle strings* (built once by Tokenmill's
              shingling rules in Python, python/tests/near_dup_oracle.py), so their
              Python-side shingling is not charged to them ("from shingles"); the
              "from text" column adds the measured cost of that Python shingling.
  dedup       the whole near-dedup pass at --threshold: Tokenmill's (signatures, LSH,
              confirmation, union-find: `tokenmill-bench minhash --mode dedup`), and for
              the peers streaming keep-first: query the LSH index, confirm candidates by
              estimated Jaccard >= threshold, drop the document on the first confirmed
              one, else insert it.
Then the quality of each tool's pass on the first --quality-docs documents, against the
brute-force oracle (exact Jaccard over the same shingles, every pair): recall over pairs
with true J >= 0.8 (found = both in one cluster), precision over the reported edges
(true J >= 0.8 right, < 0.7 wrong, in between not counted).

LSH parameters: datasketch derives (bands, rows) from the threshold with its default
objective (_optimal_param weights 0.5/0.5: 9 x 13 at 0.8/128); Tokenmill with false
negatives weighted 0.9 (14 x 9) and confirmation at the threshold less 1.5 standard
errors (docs/DEDUP.md). rensa needs bands to divide the permutations, so it gets the
divisor that minimises datasketch's objective (8 x 16 at 0.8/128); --rensa-bands
overrides it. The peers run as their users run them by default.

Rounds: every tool runs once per round in a fresh subprocess (peers) or process
(tokenmill-bench), rounds repeat --repeat times, each tool keeps its best round, so a slow
spell of this shared machine hits all tools alike. MB = 10^6 bytes of UTF-8 text.

usage: python Benchmarks/bench_minhash.py [--corpus FILE.jsonl] [--field text] [--category instruction]
           [--docs 100000] [--quality-docs 20000] [--repeat 3] [--peers rensa,datasketch]
           [--permutations 128] [--ngram 5] [--threshold 0.8] [--json-out FILE]

Corpus: a JSONL file with a text field (--field) and, optionally, a category field `cat`
(--category keeps those values, comma-separated; '' keeps all). By default it is the
anchors' MinHash corpus, built once into build/bench/ when ../shared is beside the
repository:
    python ../shared/anchors/corpus.py --mb 80 --out build/bench/instructions80.jsonl \\
        --mix instruction=0.7,instruction_zh=0.3
and its `instruction` category (English instruction/chat records) is used. Without
../shared, the demo data's Alpaca texts with generated near duplicates (small: figures are
then only indicative).
Needs .build/release/tokenmill-bench (`swift build -c release --product tokenmill-bench`)
and the peers: `build/venv/bin/pip install rensa datasketch`.
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "python", "tests"))
import near_dup_oracle as oracle  # noqa: E402

BENCH = os.path.join(REPO, ".build", "release", "tokenmill-bench")
WORK = os.path.join(REPO, "build", "bench")


# -- corpus ------------------------------------------------------------------------------------


def default_corpus():
    out = os.path.join(WORK, "instructions80.jsonl")
    if os.path.exists(out):
        return out, "instruction"
    anchors = os.path.join(REPO, "..", "shared", "anchors", "corpus.py")
    os.makedirs(WORK, exist_ok=True)
    if os.path.exists(anchors):
        print(f"building {out} with {anchors} (once)", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                anchors,
                "--mb",
                "80",
                "--out",
                out,
                "--mix",
                "instruction=0.7,instruction_zh=0.3",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return out, "instruction"
    out = os.path.join(WORK, "minhash-demo.jsonl")
    if not os.path.exists(out):
        docs = oracle.make_corpus(
            oracle.demo_bases(english=2000, chinese=500, min_en_words=1, min_zh_chars=1), seed=1
        )
        with open(out, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d.text, "cat": "demo"}, ensure_ascii=False) + "\n")
    return out, ""


def side_file(corpus, field, category, docs):
    """The first `docs` texts of `category`, as {"text": ...} lines: what every tool reads."""
    stem = os.path.splitext(os.path.basename(corpus))[0]
    cat = category.replace(",", "+") or "all"
    path = os.path.join(WORK, f"minhash-{stem}-{cat}-{docs}.jsonl")
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(corpus):
        return path
    keep = set(category.split(",")) if category else None
    n = 0
    os.makedirs(WORK, exist_ok=True)
    with open(corpus, encoding="utf-8") as src, open(path + ".tmp", "w", encoding="utf-8") as out:
        for line in src:
            r = json.loads(line)
            if keep is not None and r.get("cat") not in keep:
                continue
            text = r.get(field)
            if not isinstance(text, str):
                continue
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
            n += 1
            if n >= docs:
                break
    os.replace(path + ".tmp", path)
    return path


def load_texts(path, limit=None):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if limit is not None and len(out) >= limit:
                break
    return out


def shingle_cache(side, ngram):
    """Shingle strings of every document (pickled once) and the seconds Python took to make them."""
    path = f"{side}.shingles{ngram}.pickle"
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(side):
        with open(path, "rb") as f:
            return path, pickle.load(f)["seconds"]
    texts = load_texts(side)
    t0 = time.perf_counter()
    sh = [oracle.shingles(t, ngram) for t in texts]
    seconds = time.perf_counter() - t0
    with open(path, "wb") as f:
        pickle.dump({"seconds": seconds, "shingles": sh}, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path, seconds


# -- peers (each call runs in its own subprocess) ----------------------------------------------


def rensa_bands(threshold, perms):
    divisors = [b for b in range(1, perms + 1) if perms % b == 0]
    return min(divisors, key=lambda b: oracle.lsh_error(threshold, b, perms // b))


def anchors_shingles(text, k=5):
    """The anchors' shingling (../shared/anchors/bench_minhash.py): lower-case, split on
    whitespace, word k-grams. What a rensa user writes; simpler (and faster in Python)
    than Tokenmill's rules, so rensa's from-text figure is not slowed by our rules."""
    w = text.lower().split()
    if len(w) < k:
        return [" ".join(w)]
    return [" ".join(w[i : i + k]) for i in range(len(w) - k + 1)]


def peer_worker(a):
    if a.tool == "rensa-text":
        # Signatures from the text, as the anchors measure rensa: Python shingling plus
        # digest_matrix_from_token_sets, in batches of 4,096 documents, all timed.
        from rensa import RMinHash

        texts = load_texts(a.side, a.limit or None)
        t0 = time.perf_counter()
        for k in range(0, len(texts), 4096):
            RMinHash.digest_matrix_from_token_sets([anchors_shingles(d) for d in texts[k : k + 4096]], a.permutations, 1)
        seconds = time.perf_counter() - t0
        print(json.dumps({"tool": a.tool, "kind": a.kind, "docs": len(texts), "seconds": seconds, "removed": 0, "bands": None, "rows": None}))
        return
    with open(a.shingles, "rb") as f:
        sh = pickle.load(f)["shingles"]
    if a.limit:
        sh = sh[: a.limit]
    perms, t = a.permutations, a.threshold
    seed = 1
    edges = []
    removed = 0
    bands = rows = None
    if a.tool in ("rensa", "rensa-matrix"):
        from rensa import RMinHash, RMinHashLSH
    if a.tool == "datasketch":
        from datasketch import MinHash, MinHashLSH

        bytes_sh = [[s.encode("utf-8") for s in d] for d in sh]  # datasketch hashes bytes; not timed
    t0 = time.perf_counter()
    if a.kind == "sig":
        if a.tool == "rensa":
            for d in sh:
                m = RMinHash(num_perm=perms, seed=seed)
                m.update(d)
        elif a.tool == "rensa-matrix":
            for k in range(0, len(sh), 4096):
                RMinHash.digest_matrix_from_token_sets(sh[k : k + 4096], perms, seed)
        elif a.tool == "datasketch":
            for k in range(0, len(bytes_sh), 4096):
                MinHash.bulk(bytes_sh[k : k + 4096], num_perm=perms, seed=seed)
        else:
            raise SystemExit(f"unknown tool {a.tool}")
    else:
        if a.tool == "rensa":
            bands = a.rensa_bands or rensa_bands(t, perms)
            rows = perms // bands
            lsh = RMinHashLSH(threshold=t, num_perm=perms, num_bands=bands)
            ms = []
            for i, d in enumerate(sh):
                m = RMinHash(num_perm=perms, seed=seed)
                m.update(d)
                ms.append(m)
                hit = None
                if d:
                    for c in sorted(lsh.query(m)):
                        if m.jaccard(ms[c]) >= t:
                            hit = c
                            break
                if hit is None:
                    if d:
                        lsh.insert(i, m)
                else:
                    removed += 1
                    edges.append((hit, i))
        elif a.tool == "datasketch":
            lsh = MinHashLSH(threshold=t, num_perm=perms)
            bands, rows = lsh.b, lsh.r
            ms = []
            for k in range(0, len(bytes_sh), 4096):
                ms.extend(MinHash.bulk(bytes_sh[k : k + 4096], num_perm=perms, seed=seed))
            for i, m in enumerate(ms):
                hit = None
                if sh[i]:
                    for c in sorted(lsh.query(m)):
                        if m.jaccard(ms[c]) >= t:
                            hit = c
                            break
                if hit is None:
                    if sh[i]:
                        lsh.insert(i, m)
                else:
                    removed += 1
                    edges.append((hit, i))
        else:
            raise SystemExit(f"unknown tool {a.tool}")
    seconds = time.perf_counter() - t0
    if a.edges_out:
        with open(a.edges_out, "w") as f:
            json.dump(edges, f)
    print(
        json.dumps(
            {
                "tool": a.tool,
                "kind": a.kind,
                "docs": len(sh),
                "seconds": seconds,
                "removed": removed,
                "bands": bands,
                "rows": rows,
            }
        )
    )


def run_peer(a, tool, kind, shingles, limit=None, edges_out=None):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        tool,
        kind,
        "--shingles",
        shingles,
        "--permutations",
        str(a.permutations),
        "--threshold",
        str(a.threshold),
        "--rensa-bands",
        str(a.rensa_bands),
        "--side",
        a.side,
    ]
    if limit:
        cmd += ["--limit", str(limit)]
    if edges_out:
        cmd += ["--edges-out", edges_out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        return {"tool": tool, "kind": kind, "error": (p.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(lines[-1])


def run_tokenmill(a, side, kind, threads, limit=None, pairs_out=None):
    if not os.access(BENCH, os.X_OK):
        return {
            "tool": "tokenmill",
            "kind": kind,
            "error": f"{BENCH} not built (swift build -c release --product tokenmill-bench)",
        }
    cmd = [
        BENCH,
        "minhash",
        "--corpus",
        side,
        "--field",
        "text",
        "--permutations",
        str(a.permutations),
        "--ngram",
        str(a.ngram),
        "--threshold",
        str(a.threshold),
        "--threads",
        str(threads),
        "--mode",
        "dedup" if kind == "dedup" else "signatures",
    ]
    if limit:
        cmd += ["--limit", str(limit)]
    if pairs_out:
        cmd += ["--pairs-out", pairs_out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        return {
            "tool": "tokenmill",
            "kind": kind,
            "error": (p.stderr.strip().splitlines() or ["?"])[-1][:200],
        }
    r = json.loads(lines[-1])
    return {
        "tool": "tokenmill",
        "kind": kind,
        "docs": r["docs"],
        "seconds": r["seconds"],
        "removed": r.get("duplicates", 0),
        "bands": r.get("bands"),
        "rows": r.get("rows"),
        "threads": threads,
    }


# -- quality -----------------------------------------------------------------------------------


def quality(a, side, shingles, peers):
    texts = load_texts(side, a.quality_docs)
    sets = [oracle.shingle_set(t, a.ngram) for t in texts]
    t0 = time.perf_counter()
    truth = oracle.similar_pairs(sets, 0.8)
    print(
        f"oracle: {len(texts)} docs, {len(truth)} pairs with J >= 0.8 ({time.perf_counter() - t0:.1f} s)",
        file=sys.stderr,
    )
    out = {}
    pairs = os.path.join(WORK, "minhash-quality-tokenmill.jsonl")
    r = run_tokenmill(a, side, "dedup", 1, limit=len(texts), pairs_out=pairs)
    if "error" not in r:
        with open(pairs) as f:
            edges = [(p["a"], p["b"]) for p in map(json.loads, f) if p]
        out["tokenmill"] = oracle.score(sets, edges, truth)
    for tool in peers:
        if tool in ("rensa-matrix", "rensa-text"):
            continue
        path = os.path.join(WORK, f"minhash-quality-{tool}.json")
        r = run_peer(a, tool, "dedup", shingles, limit=len(texts), edges_out=path)
        if "error" not in r:
            with open(path) as f:
                out[tool] = oracle.score(sets, [tuple(e) for e in json.load(f)], truth)
    return len(texts), len(truth), out


# -- main --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus")
    ap.add_argument("--field", default="text")
    ap.add_argument("--category", default=None, help="values of `cat` to keep ('' = all)")
    ap.add_argument("--docs", type=int, default=100000)
    ap.add_argument("--quality-docs", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peers", default="rensa,datasketch")
    ap.add_argument("--permutations", type=int, default=128)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument(
        "--rensa-bands", type=int, default=0, help="0: the divisor of --permutations minimising the objective"
    )
    ap.add_argument("--json-out")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--shingles", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--edges-out", help=argparse.SUPPRESS)
    ap.add_argument("--side", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.tool, a.kind = a.worker
        return peer_worker(a)

    if a.corpus:
        corpus, category = a.corpus, a.category if a.category is not None else ""
    else:
        corpus, default_cat = default_corpus()
        category = a.category if a.category is not None else default_cat
    side = side_file(corpus, a.field, category, a.docs)
    a.side = side
    texts = load_texts(side)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    shingles, py_shingle_s = shingle_cache(side, a.ngram)
    peers = [p for p in a.peers.split(",") if p]
    if "rensa" in peers and "rensa-matrix" not in peers:
        peers.insert(peers.index("rensa") + 1, "rensa-matrix")
    if "rensa" in peers and "rensa-text" not in peers:
        peers.insert(peers.index("rensa-matrix") + 1, "rensa-text")
    threads_all = os.cpu_count() or 2

    # Round robin: every tool once per round; each keeps its best round.
    best = {}

    def keep(key, r):
        old = best.get(key)
        if (
            old is None
            or ("error" in old and "error" not in r)
            or ("error" not in r and "error" not in old and r["seconds"] < old["seconds"])
        ):
            best[key] = r

    for rnd in range(a.repeat):
        for kind in ("sig", "dedup"):
            keep(("tokenmill", kind, 1), run_tokenmill(a, side, kind, 1))
            if threads_all > 1:
                keep(("tokenmill", kind, threads_all), run_tokenmill(a, side, kind, threads_all))
            for tool in peers:
                if kind == "dedup" and tool in ("rensa-matrix", "rensa-text"):
                    continue
                key = (tool, kind, 1)
                if key in best and "error" in best[key]:
                    continue
                keep(key, run_peer(a, tool, kind, shingles))
        print(f"round {rnd + 1}/{a.repeat} done", file=sys.stderr)

    qdocs, qpairs, scores = quality(a, side, shingles, peers)

    # -- report
    mb = nbytes / 1e6
    print(
        f"\n{len(texts):,} documents ({mb:.1f} MB) from {os.path.relpath(corpus, REPO)}"
        f"{' category ' + category if category else ''}; {a.permutations} permutations, "
        f"{a.ngram}-gram shingles (words; characters for CJK), threshold {a.threshold}; "
        f"best of {a.repeat} round-robin rounds; {threads_all} cores. Python shingling of the same "
        f"documents (given to the peers for free): {len(texts) / py_shingle_s:,.0f} docs/s.\n"
    )

    def rate(r):
        return len(texts) / r["seconds"], mb / r["seconds"]

    ref_sig = min(
        (
            best[k]["seconds"]
            for k in best
            if k[0] in ("rensa", "rensa-matrix") and k[1] == "sig" and "error" not in best[k]
        ),
        default=None,
    )
    rt = best.get(("rensa-text", "sig", 1))
    ref_text = rt["seconds"] if rt and "error" not in rt else None
    print("### Signatures (shingle + hash + sign)\n")
    print("x rensa (from text): against rensa-text, rensa as the anchors run it from the text (Python "
          "lower/split 5-grams + digest_matrix_from_token_sets), in this run.\n")
    print("| tool | threads | docs/s | MB/s | x rensa (from shingles) | x rensa (from text) | note |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted((k for k in best if k[1] == "sig"), key=lambda k: (k[0] != "tokenmill", k[0], k[2])):
        r = best[key]
        tool, _, threads = key
        if "error" in r:
            print(f"| {tool} | {threads} | — | — | — | — | not run: {r['error']} |")
            continue
        d, m = rate(r)
        if tool == "tokenmill":
            x1 = f"{ref_sig / r['seconds']:.2f}" if ref_sig else "—"
            x2 = f"{ref_text / r['seconds']:.2f}" if ref_text else "—"
            note = "from text"
        else:
            x1 = f"{ref_sig / r['seconds']:.2f}" if ref_sig else "—"
            x2 = "—"
            note = {
                "rensa": "RMinHash.update per doc",
                "rensa-matrix": "digest_matrix_from_token_sets",
                "rensa-text": "from text: anchors' shingling + digest_matrix_from_token_sets",
                "datasketch": "MinHash.bulk (sha1 of UTF-8 bytes)",
            }.get(tool, "")
            if tool != "rensa-text":
                note += f"; plus Python shingling by our rules: {len(texts) / (r['seconds'] + py_shingle_s):,.0f} docs/s"
        print(f"| {tool} | {threads} | {d:,.0f} | {m:.1f} | {x1} | {x2} | {note} |")

    ref_dd = best.get(("rensa", "dedup", 1))
    ref_dd = ref_dd["seconds"] if ref_dd and "error" not in ref_dd else None
    print(
        f"\n### Whole near-dedup pass\n\nRecall and precision against the brute-force oracle on the first "
        f"{qdocs:,} documents ({qpairs:,} pairs with true J >= 0.8); recall counts a pair found when both "
        f"documents end in one cluster, precision judges each reported edge (J >= 0.8 right, < 0.7 wrong).\n"
    )
    print("| tool | threads | docs/s | MB/s | x rensa | docs removed | bands x rows | recall | precision |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in sorted((k for k in best if k[1] == "dedup"), key=lambda k: (k[0] != "tokenmill", k[0], k[2])):
        r = best[key]
        tool, _, threads = key
        if "error" in r:
            print(f"| {tool} | {threads} | — | — | — | — | — | — | not run: {r['error']} |")
            continue
        d, m = rate(r)
        x = f"{ref_dd / r['seconds']:.2f}" if ref_dd else "—"
        s = scores.get(tool) if threads == 1 else None
        rec = f"{s.recall:.3f}" if s else "—"
        prec = f"{s.precision:.3f}" if s else "—"
        print(
            f"| {tool} | {threads} | {d:,.0f} | {m:.1f} | {x} | {r['removed']:,} "
            f"| {r['bands']} x {r['rows']} | {rec} | {prec} |"
        )
    print(f"\nCommand: `python Benchmarks/bench_minhash.py {' '.join(sys.argv[1:])}`")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(
                {
                    "best": {"/".join(map(str, k)): v for k, v in best.items()},
                    "quality": {k: v.summary() for k, v in scores.items()},
                    "docs": len(texts),
                    "bytes": nbytes,
                    "python_shingling_seconds": py_shingle_s,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
