#!/usr/bin/env python3
"""`tokenmill encode` end to end next to the library's encoder and the fastest exact peers,
on texts each tool tokenizes once: MB/s (10^6 bytes of UTF-8 text per wall second), one
thread and two.

usage: python Benchmarks/bench_encode.py [--vocab o200k_base,cl100k_base] [--shapes lines,docs]
           [--mb 24] [--rounds 3] [--same-texts] [--peers tiktoken,fastokens,bpe_openai,tokie,gigatok,splintr]
           [--threads 1,2]

Texts: the distinct texts of ../shared's mixed corpus (`../shared/anchors/corpus.py
--no-repeat`), as two shapes: `lines` (every distinct non-empty line: chat turns,
instructions, prose lines; ~80 bytes) and `docs` (every distinct whole record). Each
shape's first --mb MB are cut into --rounds disjoint parts; round r of every tool reads
part r, so no tool sees a text twice and no cross-call cache helps anyone. With
--same-texts every round reads one part of all those texts instead, each round in fresh
processes (a process still sees each text once, and nothing carries from one round's
process to the next): ../shared's corpus now holds ~16 MB of distinct lines, and parts of
5 MB made each process's fixed start a larger share than users with real files see.

Tools, each in a subprocess of its own per (vocabulary, shape, threads), every round:
- `tokenmill encode --tokenizer V --field text --threads N PART > out`: the command
  users run, timed from exec to exit (process start, vocabulary load, reading the JSONL,
  writing one JSON array of ids a line into a new file: the previous round's output is
  removed and the page cache warmed — the part read, the vocabulary mapped by a one-line
  `encode` — before the clock starts);
- `tokenmill-bench bpe ... --repeat 1` on the same part: the library's encoder alone
  (texts already in memory, vocabulary loaded before the clock); `encode / library` is
  the command's share of it;
- the peers through their Python bindings, one process a round (no cache carried from
  one round's texts to the next), the vocabulary loaded before the clock, ids
  left in the peer's own result objects (no conversion charged): tiktoken
  (encode_ordinary; two threads: encode_ordinary_batch), fastokens (encode_batch_flat),
  bpe-openai (encode_ordinary; two threads: its encode_ordinary_batch), tokie and gigatok
  (encode_batch on a tokenizer.json made from the same ranks by
  python/tests/hf_convert.py), splintr (encode_batch_flat). Rayon-based peers get
  RAYON_NUM_THREADS=N, and every process (peers, `tokenmill encode`, the library run)
  is held to N CPUs (sched_setaffinity): fastokens' batch call used 1.6 CPUs with
  RAYON_NUM_THREADS=1. Batches of 1,000 texts. A peer that does not install gets a
  "not run" row; each peer's ids are checked against tiktoken on the first 300 texts of
  the first part, a mismatch is printed.
The figure per tool is the median over rounds. The tools take turns within each round:
Tokenmill's runs first (every thread count of the command and of the library back to
back), then each peer's at every thread count, on the same part; `encode / library`,
the one-to-two-thread scaling and `per-round median` against the fastest peer are
medians of per-round ratios (the ratio of the medians is printed too).

A second table per shape gives each tool's best round and the ratios of best rounds. On
this shared VM a process's speed moves by a third from run to run (the library's own
best-of-three over ten processes on the same 15.9 MB: 217-302 ms), and interference only
ever slows a run, so the fastest round of each tool is its least disturbed one (timeit's
advice for the same reason); a per-round ratio combines two independent disturbances and
its median stays biased low. Both tables are printed; neither replaces the other.

`make bench-encode ARGS=...` installs the peers into a venv of their own
(build/venv-bench) and runs this.
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "python", "tests"))
TOKENMILL = os.path.join(REPO, ".build", "release", "tokenmill")
BENCH = os.path.join(REPO, ".build", "release", "tokenmill-bench")
OUT = os.path.join(REPO, "build", "bench", "encode")


def corpus():
    path = os.path.join(REPO, "build", "bench", "mixed-norepeat.jsonl")
    if not os.path.exists(path):
        anchors = os.path.join(REPO, "..", "shared", "anchors", "corpus.py")
        if not os.path.exists(anchors):
            raise SystemExit("../shared/anchors/corpus.py is absent: this benchmark needs ../shared beside the repository")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        subprocess.run([sys.executable, anchors, "--mb", "200", "--no-repeat", "--out", path], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def parts(shape, mb, rounds, same=False):
    """The part files of a shape (written once): [(path, bytes)], one a round; with `same`
    one part of every text, read by every round."""
    os.makedirs(OUT, exist_ok=True)
    if same:
        return parts(shape, mb, 1)[0:1] * rounds
    paths = [os.path.join(OUT, f"{shape}-{mb}mb-{rounds}r-{r}.jsonl") for r in range(rounds)]
    if not all(os.path.exists(p) for p in paths):
        seen, texts, total = set(), [], 0
        with open(corpus(), encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)["text"]
                for t in ([s.strip() for s in text.split("\n")] if shape == "lines" else [text]):
                    if t and t not in seen:
                        seen.add(t)
                        texts.append(t)
                        total += len(t.encode("utf-8"))
                if total >= mb * 1e6:
                    break
        per = (len(texts) + rounds - 1) // rounds
        for r, p in enumerate(paths):
            with open(p, "w", encoding="utf-8") as f:
                for t in texts[r * per:(r + 1) * per]:
                    f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    out = []
    for p in paths:
        n = 0
        with open(p, encoding="utf-8") as f:
            for line in f:
                n += len(json.loads(line)["text"].encode("utf-8"))
        out.append((p, n))
    return out


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def hf_json(vocab):
    from hf_convert import build
    out = os.path.join(REPO, "build", "bench", "hf")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{vocab}.tokenizer.json")
    return path if os.path.exists(path) else build(vocab, out)


def pin(threads):
    """Holds the calling process to `threads` CPUs: a library that starts threads of its
    own whatever RAYON_NUM_THREADS says (fastokens' encode_batch_flat used 1.6 CPUs "on
    one thread") is measured on the cores it is given, like everyone else."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(cpus[:max(1, threads)]))


@contextlib.contextmanager
def pinned(threads):
    """The harness itself held to `threads` CPUs while it starts a timed command, which
    inherits the mask; the mask is restored after. A `preexec_fn` would pin the child
    too, but it makes `subprocess` fork the Python process instead of vfork-and-exec:
    2.5 ms from spawn to exit for /bin/true against 0.6 (min of 30, this VM), a cost of
    the harness that was charged to `tokenmill encode` every round (the library and the
    peers are timed inside their processes)."""
    before = os.sched_getaffinity(0)
    pin(threads)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def peer_worker(peer, vocab, threads, files):
    """Runs in a subprocess: prints one JSON line with each round's seconds."""
    pin(threads)
    from tiktoken_offline import get_encoding, ranks_path
    ref = get_encoding(vocab)
    ids = lambda x: list(x)
    if peer == "tiktoken":
        if threads == 1:
            one, batch = ref.encode_ordinary, None
        else:
            one, batch = ref.encode_ordinary, lambda ts: ref.encode_ordinary_batch(ts, num_threads=threads)
    elif peer == "fastokens":
        import fastokens
        tok = fastokens.Tokenizer.from_tiktoken(ranks_path(vocab), pattern=ref._pat_str, special_tokens=ref._special_tokens)
        one, batch = (lambda t: tok.encode_ordinary(t).ids), (lambda ts: tok.encode_batch_flat(ts, split_special_tokens=True))
    elif peer == "bpe_openai":
        import bpe_openai
        enc = bpe_openai.get_encoding(vocab)
        one = enc.encode_ordinary
        batch = None if threads == 1 else (lambda ts: enc.encode_ordinary_batch(ts, num_threads=threads))
    elif peer == "tokie":
        import tokie
        tok = tokie.Tokenizer.from_json(hf_json(vocab))
        one = lambda t: tok.encode(t, add_special_tokens=False).ids
        batch = lambda ts: tok.encode_batch(ts, add_special_tokens=False)
    elif peer == "gigatok":
        import gigatok
        tok = gigatok.gigatok_rs.BPETokenizer.from_hf(hf_json(vocab))
        one, batch = tok.encode, tok.encode_batch
        ids = lambda x: [int(i) for i in x]
    elif peer == "splintr":
        import re
        import splintr
        pat = re.sub(r"(\{\d+(?:,\d*)?\}|[?*+])\+", r"\1", ref._pat_str)
        tok = splintr.Tokenizer.from_bytes(open(ranks_path(vocab), "rb").read(), pat, ref._special_tokens)
        one, batch = tok.encode_ordinary, tok.encode_batch_flat
    else:
        raise SystemExit(f"unknown peer {peer}")
    rounds = [read_texts(p) for p in files]
    bad = sum(1 for t in rounds[0][:300] if ids(one(t)) != ref.encode_ordinary(t))
    seconds = []
    for texts in rounds:
        t0 = time.perf_counter()
        if batch is None:
            for t in texts:
                one(t)
        else:
            for i in range(0, len(texts), 1000):
                batch(texts[i:i + 1000])
        seconds.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": seconds, "mismatch": bad}))


def run_peer(peer, vocab, threads, files):
    """Each round in a process of its own: a peer that caches pieces across calls
    (fastokens: 190 MB/s on a first pass over English text with o200k_base, 380 on the
    second) starts every round cold, as Tokenmill's processes do."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    seconds, mismatch = [], 0
    for k, f in enumerate(files):
        p = subprocess.run([sys.executable, __file__, "--worker", peer, vocab, str(threads), f],
                           capture_output=True, text=True, env=env)
        if p.returncode != 0:
            lines = p.stderr.strip().splitlines() or ["?"]
            said = next((l for l in reversed(lines) if "Error" in l), lines[-1])
            return None, said.strip()[:140].replace("|", "/")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        seconds += r["seconds"]
        if k == 0:
            mismatch = r["mismatch"]
    return {"seconds": seconds, "mismatch": mismatch}, None


def before_encode(vocab, path, out, tokenmill=TOKENMILL):
    """What every timed `tokenmill encode` of `path` into `out` is preceded by.

    The previous round's output is removed before the clock starts: truncating it inside
    the timed region made the kernel free its ~20 MB of page cache on `encode`'s clock
    (10-40 ms, more than a tenth of a two-thread run), work that belongs to no command.
    The ids are still written to a new file, through the page cache, on the clock.

    The page cache is warmed, as the library run's untimed loading warms it: this VM pages
    out memory idle for a few seconds (DAMON), and between rounds it took up to a fifth
    of a compiled vocabulary's pages (a disk read on `encode`'s clock that has nothing to
    do with tokenizing). A one-line `encode` maps the vocabulary; the part is read once.
    Nothing is tokenized twice: the one line is not from the part."""
    if os.path.exists(out):
        os.unlink(out)
    subprocess.run([tokenmill, "encode", "--tokenizer", vocab], input=b"warm\n", stdout=subprocess.DEVNULL, check=True)
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass


def run_tokenmill(vocab, threads, path):
    """Seconds of `tokenmill encode` (exec to exit, output written to a file) and of the
    library's encoder on the same texts."""
    out = os.path.join(OUT, "ids.jsonl")
    before_encode(vocab, path, out)
    with open(out, "wb") as f, pinned(threads):
        t0 = time.perf_counter()
        subprocess.run([TOKENMILL, "encode", "--tokenizer", vocab, "--field", "text", "--threads", str(threads), path],
                       stdout=f, check=True)
        command = time.perf_counter() - t0
    with pinned(threads):
        lib = subprocess.run([BENCH, "bpe", "--tokenizer", vocab, "--corpus", path, "--threads", str(threads), "--repeat", "1"],
                             capture_output=True, text=True, check=True)
    return command, json.loads(lib.stdout)["seconds"]


def check_tokenmill(vocab, path):
    from tiktoken_offline import get_encoding
    ref = get_encoding(vocab)
    texts = read_texts(path)[:300]
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run([TOKENMILL, "encode", "--tokenizer", vocab, "--field", "text"], input=payload,
                         capture_output=True, text=True, check=True)
    return sum(1 for t, g in zip(texts, out.stdout.splitlines()) if json.loads(g) != ref.encode_ordinary(t))


def print_best(rows, thread_counts):
    """Each tool's best round (MB/s) and the ratios of best rounds."""
    best = {(v, t, tool): mbs for v, t, tool, mbs in rows}
    print("Best round of each tool (MB/s) and ratios of best rounds:\n")
    print("| vocab | threads | encode | library | encode / library | fastest exact peer | encode / peer | scaling encode (library) |")
    print("|---|---|---|---|---|---|---|---|")
    for v in dict.fromkeys(r[0] for r in rows):
        for t in thread_counts:
            enc, lib = best.get((v, t, "tokenmill encode")), best.get((v, t, "tokenmill library"))
            if enc is None:
                continue
            peers = [(mbs, tool) for (vv, tt, tool), mbs in best.items() if vv == v and tt == t and not tool.startswith("tokenmill")]
            peer = max(peers) if peers else None
            scaling = ""
            if t != 1 and (v, 1, "tokenmill encode") in best:
                scaling = f"{enc / best[(v, 1, 'tokenmill encode')]:.2f}x ({lib / best[(v, 1, 'tokenmill library')]:.2f}x)"
            print(f"| {v} | {t} | {enc:.1f} | {lib:.1f} | {enc / lib:.2f} | "
                  + (f"{peer[1]} {peer[0]:.1f} | {enc / peer[0]:.2f}x" if peer else "- | -") + f" | {scaling} |")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", default="o200k_base,cl100k_base")
    ap.add_argument("--shapes", default="lines,docs")
    ap.add_argument("--mb", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", default="tiktoken,fastokens,bpe_openai,tokie,gigatok,splintr")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--same-texts", action="store_true",
                    help="every round reads one part of all the texts (each in fresh processes) instead of a part of its own")
    ap.add_argument("--worker", nargs="+")
    a = ap.parse_args()
    if a.worker:
        peer, vocab, threads, *files = a.worker
        peer_worker(peer, vocab, int(threads), files)
        return
    peers = [p for p in a.peers.split(",") if p]
    thread_counts = [int(t) for t in a.threads.split(",")]
    where = "one part of all texts, fresh processes each round" if a.same_texts else "disjoint parts"
    print(f"MB/s, median of {a.rounds} rounds on {where} (up to {a.mb} MB); `x fastest peer` = Tokenmill's "
          f"`encode` against the fastest exact peer at the same thread count\n")
    for shape in a.shapes.split(","):
        files = parts(shape, a.mb, a.rounds, a.same_texts)
        nbytes = [n for _, n in files]
        ntexts = sum(sum(1 for _ in open(p, encoding="utf-8")) for p, _ in files)
        print(f"### {shape}: {sum(nbytes) / 1e6:.1f} MB read in all, {ntexts:,} texts, {sum(nbytes) / ntexts:.0f} bytes a text\n")
        print("| vocab | threads | tool | MB/s | x tiktoken | note |")
        print("|---|---|---|---|---|---|")
        best_rows = []
        for vocab in a.vocab.split(","):
            mismatch = check_tokenmill(vocab, files[0][0])
            one_thread = {}
            # Round-robin: in each round Tokenmill's runs (every thread count of the command
            # and of the library, back to back) and then every peer's at each thread count,
            # all on the same part, so that a ratio compares runs seconds apart on this VM
            # whose speed moves by a third within minutes (with every tool's rounds in a
            # block of their own, a slow minute fell on one tool's block and not another's).
            tm = {t: ([], []) for t in thread_counts}
            peer_mbs = {(peer, t): [] for peer in peers for t in thread_counts}
            peer_failed, peer_mismatch = {}, {}
            for r, (p, n) in enumerate(files):
                for threads in thread_counts:
                    c, l = run_tokenmill(vocab, threads, p)
                    tm[threads][0].append(n / c / 1e6)
                    tm[threads][1].append(n / l / 1e6)
                for threads in thread_counts:
                    for peer in peers:
                        if (peer, threads) in peer_failed:
                            continue
                        res, err = run_peer(peer, vocab, threads, [p])
                        if res is None:
                            peer_failed[(peer, threads)] = err
                            continue
                        peer_mbs[(peer, threads)].append(n / res["seconds"][0] / 1e6)
                        if r == 0:
                            peer_mismatch[(peer, threads)] = res["mismatch"]
            for threads in thread_counts:
                rows = {}
                cmd, lib = tm[threads]
                versus = {}
                for peer in peers:
                    if (peer, threads) in peer_failed:
                        rows[peer] = (None, f"not run: {peer_failed[(peer, threads)]}")
                        continue
                    mbs_rounds = peer_mbs[(peer, threads)]
                    bad = peer_mismatch.get((peer, threads), 0)
                    rows[peer] = (statistics.median(mbs_rounds), "" if bad == 0 else f"**{bad} of 300 ids differ**")
                    if bad == 0:
                        best_rows.append((vocab, threads, peer, max(mbs_rounds)))
                        versus[peer] = statistics.median(c / m for c, m in zip(cmd, mbs_rounds))
                rows["tokenmill encode"] = (statistics.median(cmd), "" if mismatch == 0 else f"**{mismatch} of 300 ids differ**")
                rows["tokenmill library"] = (statistics.median(lib), "")
                ratios = statistics.median(c / l for c, l in zip(cmd, lib))
                base = rows.get("tiktoken", (None,))[0]
                exact = [(v[0], k) for k, v in rows.items() if k in peers and v[0] and not v[1]]
                for tool, (mbs, note) in rows.items():
                    if mbs is None:
                        print(f"| {vocab} | {threads} | {tool} | - | - | {note} |")
                        continue
                    if tool == "tokenmill encode":
                        extra = [f"{ratios:.2f} of the library"]
                        if exact:
                            best = max(exact)
                            extra.append(f"{mbs / best[0]:.2f}x fastest peer ({best[1]}); per-round median {versus[best[1]]:.2f}x")
                        note = "; ".join([note] + extra if note else extra)
                    print(f"| {vocab} | {threads} | {tool} | {mbs:.1f} | {mbs / base:.2f}x | {note} |" if base else
                          f"| {vocab} | {threads} | {tool} | {mbs:.1f} | - | {note} |")
                one_thread.setdefault("rows", {})[threads] = rows
            per = one_thread["rows"]
            if 1 in per and 2 in per:
                s = statistics.median(b / a for a, b in zip(tm[1][0], tm[2][0]))
                sl = statistics.median(b / a for a, b in zip(tm[1][1], tm[2][1]))
                print(f"| {vocab} | 1->2 | tokenmill scaling | | | encode {s:.2f}x, library {sl:.2f}x (medians of per-round ratios) |")
            for threads in thread_counts:
                best_rows.append((vocab, threads, "tokenmill encode", max(tm[threads][0])))
                best_rows.append((vocab, threads, "tokenmill library", max(tm[threads][1])))
        print()
        print_best(best_rows, thread_counts)


if __name__ == "__main__":
    main()
