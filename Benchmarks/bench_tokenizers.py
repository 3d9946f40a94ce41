#!/usr/bin/env python3
"""BPE encode throughput: Tokenmill next to tiktoken and the fastest exact challengers,
on the same texts, in one run; MB/s (10^6 bytes of UTF-8 text per wall second) and the
ratio to tiktoken, single-threaded and on all cores.

usage: python Benchmarks/bench_tokenizers.py [--corpus FILE.jsonl] [--mb 50]
           [--vocab cl100k_base,o200k_base] [--peers tiktoken,hf,fastokens,splintr,quicktok,rs_bpe]
           [--repeat 3]

Corpus: a JSONL file of {"text": ...}. By default the mixed 50 MB corpus of
../shared/anchors/corpus.py (prose, Chinese, code, instructions) is built into
build/bench/ when ../shared is beside the repository; without it, the demo data.
Every tool runs once per round, rounds repeat --repeat times, each tool keeps its best
round. Peers run in their own subprocess each: tiktoken (encode_ordinary per text; 2 threads:
encode_ordinary_batch(num_threads=2)), Hugging Face tokenizers (on a tokenizer.json built
from the same ranks by python/tests/hf_convert.py), and fastokens, splintr, quicktok and
rs_bpe when they are installed (`make bench` pip-installs fastokens splintr-rs quicktok-v1
rs-bpe; a peer that is missing gets a "not run" row); each peer's ids are checked against tiktoken on the
first 500 texts and a mismatch is printed in the table. On 2 cores each round also runs
two single-thread Tokenmill processes at once, the machine's own ceiling for scaling,
printed under the table; then Tokenmill's scaling is measured again as the median of
--scaling-pairs paired ratios of alternating one-thread, two-thread and two-process runs. Tokenmill runs as
.build/release/tokenmill-bench (build it with `swift build -c release --product
tokenmill-bench`), after its own ids were checked the same way.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "python", "tests"))


def default_corpus(mb):
    out = os.path.join(REPO, "build", "bench", f"mixed{mb}.jsonl")
    if os.path.exists(out):
        return out
    anchors = os.path.join(REPO, "..", "shared", "anchors", "corpus.py")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if os.path.exists(anchors):
        subprocess.run([sys.executable, anchors, "--mb", str(mb), "--out", out], check=True,
                       stdout=subprocess.DEVNULL)
        return out
    # No shared data: the demo texts (small; figures are then only indicative).
    with open(out, "w") as f:
        for name in ("alpaca_en_2000.json",):
            for r in json.load(open(os.path.join(REPO, "Specs", "data", name))):
                f.write(json.dumps({"text": r["instruction"] + "\n" + r["output"]}) + "\n")
        for line in open(os.path.join(REPO, "Specs", "data", "python_peps_40.jsonl")):
            f.write(line)
    return out


def load_texts(path, mb):
    texts, n = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)["text"]
            texts.append(t)
            n += len(t.encode("utf-8"))
            if n >= mb * 1e6:
                break
    return texts


def strip_possessive(pat):
    return re.sub(r"(\{\d+(?:,\d*)?\}|[?*+])\+", r"\1", pat)


def peer_worker(peer, vocab, corpus, mb, repeat):
    """Runs in a subprocess: prints one JSON line."""
    from tiktoken_offline import get_encoding, ranks_path
    texts = load_texts(corpus, mb)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    ref = get_encoding(vocab)
    if peer == "tiktoken":
        one, batch = ref.encode_ordinary, lambda ts: ref.encode_ordinary_batch(ts, num_threads=2)
    elif peer == "fastokens":
        import fastokens
        tok = fastokens.Tokenizer.from_tiktoken(ranks_path(vocab), pattern=ref._pat_str, special_tokens=ref._special_tokens)
        one, batch = (lambda t: tok.encode_ordinary(t).ids), (lambda ts: tok.encode_batch_flat(ts, split_special_tokens=True))
    elif peer == "splintr":
        import splintr
        tok = splintr.Tokenizer.from_bytes(open(ranks_path(vocab), "rb").read(), strip_possessive(ref._pat_str), ref._special_tokens)
        one, batch = tok.encode_ordinary, tok.encode_batch_flat
    elif peer == "hf":
        # Hugging Face tokenizers on a tokenizer.json built from the same ranks (the test
        # suite's converter), special tokens never produced from text (= encode_ordinary).
        from hf_convert import build
        from tokenizers import Tokenizer
        out = os.path.join(REPO, "build", "bench", "hf")
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, f"{vocab}.tokenizer.json")
        tok = Tokenizer.from_file(path if os.path.exists(path) else build(vocab, out))
        tok.encode_special_tokens = True
        fast = getattr(tok, "encode_batch_fast", tok.encode_batch)
        one = lambda t: tok.encode(t, add_special_tokens=False).ids
        batch = lambda ts: [e.ids for e in fast(ts, add_special_tokens=False)]
    elif peer == "quicktok":
        import quicktok  # quicktok-v1: bundled cl100k_base / o200k_base
        e = quicktok.get_encoding(vocab)
        one, batch = e.encode_ordinary, (lambda ts: e.encode_batch(ts, threads=2))
    elif peer == "rs_bpe":
        from rs_bpe.bpe import openai as rs  # rs-bpe: bundled cl100k_base / o200k_base
        tok = getattr(rs, vocab)()
        options = rs.ParallelOptions(min_batch_size=1, chunk_size=64, max_threads=2)
        one, batch = tok.encode, (lambda ts: tok.encode_batch_parallel(ts, options)[0])
    else:
        raise SystemExit(f"unknown peer {peer}")
    bad = sum(1 for t in texts[:500] if list(one(t)) != ref.encode_ordinary(t))
    best1 = best2 = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for t in texts:
            one(t)
        best1 = min(best1, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(0, len(texts), 1000):
            batch(texts[i:i + 1000])
        best2 = min(best2, time.perf_counter() - t0)
    print(json.dumps({"tool": peer, "vocab": vocab, "bytes": nbytes, "mismatch": bad,
                      "1t": nbytes / best1 / 1e6, "2t": nbytes / best2 / 1e6}))


def tokenmill(vocab, corpus, mb, repeat, threads):
    bench = os.path.join(REPO, ".build", "release", "tokenmill-bench")
    # The same texts as the peers: write the first `mb` of the corpus to a side file.
    side = corpus + f".{mb}mb.jsonl"
    if not os.path.exists(side):
        with open(side, "w") as f:
            for t in load_texts(corpus, mb):
                f.write(json.dumps({"text": t}) + "\n")
    out = subprocess.run([bench, "bpe", "--tokenizer", vocab, "--corpus", side, "--threads", str(threads),
                          "--repeat", str(repeat)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def tokenmill_pair(vocab, corpus, mb):
    """Two single-thread Tokenmill processes at once, MB/s summed: what this machine gives
    two independent encoders, the ceiling for any threading (each times its best of two
    passes, so the timed passes overlap)."""
    bench = os.path.join(REPO, ".build", "release", "tokenmill-bench")
    side = corpus + f".{mb}mb.jsonl"
    procs = [subprocess.Popen([bench, "bpe", "--tokenizer", vocab, "--corpus", side, "--threads", "1", "--repeat", "2"],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    return sum(json.loads(p.communicate()[0])["mb_per_s"] for p in procs)


def tokenmill_scaling(vocab, corpus, mb, pairs):
    """Scaling measured as the median of paired ratios: one-thread, two-thread and
    two-process runs alternate `pairs` times, so each ratio compares runs seconds apart.
    Best-of-rounds figures can pair a one-thread run from a fast minute with a two-thread
    run from a slow one; on this shared machine that moves them by 10% and more."""
    threads, machine = [], []
    for _ in range(pairs):
        one = tokenmill(vocab, corpus, mb, 1, 1)["mb_per_s"]
        two = tokenmill(vocab, corpus, mb, 1, 2)["mb_per_s"]
        threads.append(two / one)
        machine.append(tokenmill_pair(vocab, corpus, mb) / one)
    return statistics.median(threads), statistics.median(machine)


def check_tokenmill(vocab, corpus, mb):
    from tiktoken_offline import get_encoding
    texts = load_texts(corpus, mb)[:500]
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run([os.path.join(REPO, ".build", "release", "tokenmill"), "encode", "--tokenizer", vocab,
                          "--field", "text"], input=payload, capture_output=True, text=True, check=True)
    ref = get_encoding(vocab)
    return sum(1 for t, g in zip(texts, out.stdout.splitlines()) if json.loads(g) != ref.encode_ordinary(t))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus")
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--vocab", default="cl100k_base,o200k_base")
    ap.add_argument("--peers", default="tiktoken,hf,fastokens,splintr,quicktok,rs_bpe")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scaling-pairs", type=int, default=9,
                    help="alternations of Tokenmill's one-thread, two-thread and two-process runs (0: none)")
    ap.add_argument("--worker", nargs=2)
    a = ap.parse_args()
    corpus = a.corpus or default_corpus(a.mb)
    if a.worker:
        return peer_worker(a.worker[0], a.worker[1], corpus, a.mb, a.repeat)
    # Round robin: every tool runs once per round and keeps its best round, so a slow
    # spell of this (shared, virtual) machine hits all tools alike instead of one.
    rows = {}
    for _ in range(a.repeat):
        for vocab in a.vocab.split(","):
            for peer in a.peers.split(","):
                key = (vocab, peer)
                if key in rows and "error" in rows[key]:
                    continue
                r = subprocess.run([sys.executable, __file__, "--corpus", corpus, "--mb", str(a.mb), "--repeat", "1",
                                    "--worker", peer, vocab], capture_output=True, text=True)
                if r.returncode != 0:
                    rows[key] = {"tool": peer, "vocab": vocab, "error": (r.stderr.strip().splitlines() or ["?"])[-1]}
                    continue
                res = json.loads(r.stdout.strip().splitlines()[-1])
                best = rows.setdefault(key, res)
                best["1t"], best["2t"] = max(best["1t"], res["1t"]), max(best["2t"], res["2t"])
            key = (vocab, "tokenmill")
            t1 = tokenmill(vocab, corpus, a.mb, 1, 1)
            t2 = tokenmill(vocab, corpus, a.mb, 1, os.cpu_count() or 2)
            pair = tokenmill_pair(vocab, corpus, a.mb) if (os.cpu_count() or 2) == 2 else None
            if key not in rows:
                rows[key] = {"tool": "tokenmill", "vocab": vocab, "bytes": t1["bytes"],
                             "mismatch": check_tokenmill(vocab, corpus, a.mb), "1t": 0.0, "2t": 0.0, "pair": 0.0}
            rows[key]["1t"] = max(rows[key]["1t"], t1["mb_per_s"])
            rows[key]["2t"] = max(rows[key]["2t"], t2["mb_per_s"])
            if pair is not None:
                rows[key]["pair"] = max(rows[key]["pair"], pair)
    rows = list(rows.values())
    print(f"corpus: {corpus} (first {a.mb} MB), {os.cpu_count()} cores; MB/s of UTF-8 text, best of {a.repeat} round-robin rounds")
    print("| vocab | tool | 1 thread | all cores | x tiktoken (1t) | x tiktoken (all) | scaling | ids vs tiktoken (500 texts) |")
    print("|---|---|---|---|---|---|---|---|")
    for vocab in a.vocab.split(","):
        base = next((r for r in rows if r["vocab"] == vocab and r["tool"] == "tiktoken" and "1t" in r), None)
        for r in rows:
            if r["vocab"] != vocab:
                continue
            if "error" in r:
                print(f"| {vocab} | {r['tool']} | — | — | — | — | — | not run: {r['error'][:80]} |")
                continue
            x1 = f"{r['1t'] / base['1t']:.2f}" if base else "—"
            x2 = f"{r['2t'] / base['2t']:.2f}" if base else "—"
            ok = "equal" if r["mismatch"] == 0 else f"{r['mismatch']} DIFFER"
            print(f"| {vocab} | {r['tool']} | {r['1t']:.1f} | {r['2t']:.1f} | {x1} | {x2} | {r['2t'] / r['1t']:.2f} | {ok} |")
    # The machine check: on a shared virtual machine two cores rarely give twice one core.
    for r in rows:
        if r["tool"] == "tokenmill" and r.get("pair"):
            print(f"{r['vocab']}: two single-thread Tokenmill processes at once: {r['pair']:.1f} MB/s together = "
                  f"{r['pair'] / r['1t']:.2f}x one; Tokenmill on 2 threads reaches {r['2t'] / r['pair']:.2f} of that")
    if a.scaling_pairs and (os.cpu_count() or 2) == 2:
        for vocab in a.vocab.split(","):
            threads, machine = tokenmill_scaling(vocab, corpus, a.mb, a.scaling_pairs)
            print(f"{vocab}: Tokenmill scaling from one core to two, median of {a.scaling_pairs} paired runs: "
                  f"{threads:.2f} (two single-thread processes in the same pairs: {machine:.2f})")


if __name__ == "__main__":
    main()
