"""The staged build (docs/PIPELINE.md): the same bytes however it runs.

A spec with every stage on (exact + near dedup, decontamination, split, best-fit,
shuffle, bad rows skipped) over real records in several JSONL parts is built once as the
reference; then with one thread, with other unit sizes, as separate processes per stage
with 1 and 3 tasks (stage names read from ``tokenmill plan``), and killed with SIGKILL at
random moments and rerun. Every run must end with the reference's bytes (report.json and report.html,
which hold timings, aside). The corpus is the repository's sample data; with
``../shared`` beside the repository, a ~10 MB corpus from its Alpaca-52K is built too.
"""

from __future__ import annotations

import filecmp
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import cli
import pytest
import xxhash

pytestmark = pytest.mark.binary

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
# Units small enough that every stage has many (the repository's corpus is ~1.5 MB; the
# shared one ~10 MB gets 512 KiB units, so its many builds stay quick).
UNITS = {"repo": "65536", "shared": "524288"}
current_units = UNITS["repo"]
DEFAULT = object()


def alpaca_rows(path: Path) -> list[dict]:
    data = path.read_bytes()
    if path.suffix == ".zst":
        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(data).read()
    return json.loads(data)


def write_corpus(folder: Path, rows: list[dict], parts: int = 4) -> list[Path]:
    """``rows`` as JSONL parts, with planted exact duplicates, near duplicates (one word
    changed) and a few malformed lines, all deterministic."""
    rng = random.Random(7)
    lines: list[str] = []
    for i, r in enumerate(rows):
        lines.append(json.dumps(r, ensure_ascii=False))
        if i % 97 == 5:
            lines.append(json.dumps(r, ensure_ascii=False))  # exact duplicate
        if i % 41 == 3 and len(r["instruction"].split()) > 8:
            words = r["instruction"].split()
            words[rng.randrange(len(words))] = "zebra"
            lines.append(json.dumps({**r, "instruction": " ".join(words)}, ensure_ascii=False))
        if i % 401 == 17:
            lines.append('{"instruction": "broken", "output": ')  # malformed: a reject
    folder.mkdir(parents=True, exist_ok=True)
    size = (len(lines) + parts - 1) // parts
    paths = []
    for k in range(parts):
        p = folder / f"part-{k:02d}.jsonl"
        p.write_text("\n".join(lines[k * size : (k + 1) * size]) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


def write_spec(folder: Path, extra_text: Path | None) -> Path:
    sources = [
        {"name": "alpaca", "path": "parts/part-*.jsonl", "map": {"prompt": "{instruction}\n\n{input}", "response": "output"}},
        {"name": "zh", "path": str(REPO / "Specs" / "data" / "alpaca_zh_500.jsonl"),
         "map": {"prompt": "{instruction}\n\n{input}", "response": "output"}},
    ]
    if extra_text is not None:
        sources.append({"name": "peps", "path": str(extra_text), "map": {"text": "text"}})
    spec = {
        "name": "staged",
        "on_error": "skip",
        "sources": sources,
        "dedup": {"exact": True, "near": {"threshold": 0.8, "ngram": 5, "permutations": 128, "on": "prompt"}},
        "decontaminate": {"against": [str(REPO / "Specs" / "data" / "vicuna_bench_question.jsonl")], "field": "turns", "ngram": 8},
        "split": {"validation": 0.05, "seed": 3},
        "tokenizer": "cl100k_base",
        "template": "chatml",
        "pack": {"seq_len": 1024, "strategy": "best-fit", "overflow": "split"},
        "output": {"dir": "out", "shard_tokens": 150000, "shuffle_seed": 11},
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["repo", "shared"])
def corpus(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"staged-{request.param}")
    if request.param == "repo":
        rows = alpaca_rows(REPO / "Specs" / "data" / "alpaca_en_2000.json")
        peps = REPO / "Specs" / "data" / "python_peps_40.jsonl"
    else:
        source = SHARED / "alpaca" / "alpaca52k_en.json.zst"
        if not source.is_file():
            pytest.skip(f"{source} is absent (../shared is not beside the repository)")
        rows = alpaca_rows(source)[:30000]
        peps = REPO / "Specs" / "data" / "python_peps_40.jsonl"
    write_corpus(folder / "parts", rows)
    global current_units
    current_units = UNITS[request.param]
    return write_spec(folder, peps)


def env(unit_bytes=DEFAULT) -> dict:
    if unit_bytes is DEFAULT:
        unit_bytes = current_units
    e = dict(os.environ)
    e.pop("TOKENMILL_UNIT_BYTES", None)
    if unit_bytes is not None:
        e["TOKENMILL_UNIT_BYTES"] = unit_bytes
    for k in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "JOB_COMPLETION_INDEX"):
        e.pop(k, None)
    return e


def run(binary, *args, unit_bytes=DEFAULT, check=True, timeout=600):
    r = subprocess.run([str(binary), *map(str, args)], capture_output=True, env=env(unit_bytes), timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}: {r.stderr.decode(errors='replace')[-3000:]}")
    return r


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file() and p.name not in ("report.json", "report.html") and not p.name.startswith(".")}


def assert_same(a: dict[str, bytes], b: dict[str, bytes], what: str) -> None:
    assert sorted(a) == sorted(b), f"{what}: files {sorted(a)} vs {sorted(b)}"
    differ = [n for n in a if a[n] != b[n]]
    assert not differ, f"{what}: these files differ from the reference build: {differ}"


@pytest.fixture(scope="module")
def reference(tokenmill_bin, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "out"
    t0 = time.monotonic()
    run(tokenmill_bin, "build", corpus, "--out", out, "--threads", "2", "--quiet")
    wall = time.monotonic() - t0
    files = outputs(out)
    assert any(n.startswith("train-0000") for n in files) and "validation-00000.tkm" in files, sorted(files)
    assert "train-00001.tkm" in files, "the reference should have several shards"
    index = json.loads(files["index.json"])
    counts = index["sources"]["alpaca"]
    assert counts["rejected"] > 0 and counts["exact_dup"] > 0 and counts["near_dup"] > 0, counts
    assert not (out / ".work").exists(), "a finished build removes its work folder"
    run(tokenmill_bin, "verify", out)
    return files, wall


def test_threads_and_unit_size_do_not_change_the_bytes(tokenmill_bin, corpus, reference, tmp_path):
    files, _ = reference
    run(tokenmill_bin, "build", corpus, "--out", tmp_path / "t1", "--threads", "1", "--quiet")
    assert_same(files, outputs(tmp_path / "t1"), "--threads 1")
    run(tokenmill_bin, "build", corpus, "--out", tmp_path / "big", "--threads", "2", "--quiet", unit_bytes=None)
    assert_same(files, outputs(tmp_path / "big"), "default unit size")
    run(tokenmill_bin, "build", corpus, "--out", tmp_path / "odd", "--threads", "2", "--quiet", unit_bytes="10007")
    assert_same(files, outputs(tmp_path / "odd"), "10007-byte units")


def plan_stages(binary, spec) -> list[str]:
    text = run(binary, "plan", spec).stdout.decode()
    stages = [line.split()[0] for line in text.splitlines() if line.strip()]
    assert stages[0] == "scan" and stages[-1] == "finish", text
    return stages


@pytest.mark.parametrize("tasks", [1, 3])
def test_stages_as_separate_processes_give_the_same_bytes(tokenmill_bin, corpus, reference, tmp_path, tasks):
    files, _ = reference
    out = tmp_path / "out"
    for stage in plan_stages(tokenmill_bin, corpus):
        # The tasks of a stage run at once, as a job array's would.
        procs = [
            subprocess.Popen([str(tokenmill_bin), "build", str(corpus), "--out", str(out), "--stage", stage, "--task", str(i),
                              "--tasks", str(tasks), "--threads", "1", "--quiet"], env=env(), stderr=subprocess.PIPE)
            for i in range(tasks)
        ]
        for i, p in enumerate(procs):
            _, err = p.communicate(timeout=600)
            assert p.returncode == 0, f"stage {stage} task {i}/{tasks}: {err.decode(errors='replace')}"
    assert_same(files, outputs(out), f"stages as processes, {tasks} tasks")


def test_task_index_from_the_scheduler_environment(tokenmill_bin, corpus, reference, tmp_path):
    """Slurm's array variables and Kubernetes' JOB_COMPLETION_INDEX pick the task."""
    files, _ = reference
    out = tmp_path / "out"
    for stage in plan_stages(tokenmill_bin, corpus):
        for i in range(2):
            e = env()
            if stage in ("scan", "write"):
                e.update(SLURM_ARRAY_TASK_ID=str(i), SLURM_ARRAY_TASK_COUNT="2")
                args = []
            else:
                e.update(JOB_COMPLETION_INDEX=str(i))
                args = ["--tasks", "2"]
            r = subprocess.run([str(tokenmill_bin), "build", str(corpus), "--out", str(out), "--stage", stage, *args, "--quiet"],
                               env=e, capture_output=True)
            assert r.returncode == 0, r.stderr.decode()
    assert_same(files, outputs(out), "tasks from the environment")


def stage_in_progress(out: Path, stages: list[str]) -> str:
    """The first stage whose folder lacks a marker its successor's presence implies."""
    work = out / ".work"
    if not work.exists():
        return "start" if not (out / "index.json").exists() else "done"
    last = "scan"
    for s in stages:
        d = work / s
        try:
            if any(p.suffix == ".done" for p in d.iterdir()):
                last = s
        except FileNotFoundError:
            # Not made yet, or the build (still running) is removing its work folder.
            if not work.exists():
                return "finish"
    return last


def test_sigkill_at_random_moments_then_rerun_gives_the_same_bytes(tokenmill_bin, corpus, reference, tmp_path):
    files, wall = reference
    stages = plan_stages(tokenmill_bin, corpus)
    rng = random.Random(2026)
    out = tmp_path / "out"
    kills, hit, completions = 0, [], 0
    for attempt in range(300):
        # At least 24 kills, and on until they have landed in three stages: the stages
        # after the scan are a few percent of the wall time, so every other kill aims at
        # the build's later part (where they and the write stage run) rather than leave the
        # spread to timing.
        if kills >= 24 and len(set(hit)) >= 3 or kills >= 80:
            break
        p = subprocess.Popen([str(tokenmill_bin), "build", str(corpus), "--out", str(out), "--threads", "2", "--quiet"],
                             env=env(), stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, wall * 1.1) if attempt % 2 == 0 else rng.uniform(wall * 0.6, wall * 1.05))
        if p.poll() is None:
            hit.append(stage_in_progress(out, stages))
            p.send_signal(signal.SIGKILL)
            p.communicate()
            kills += 1
            continue
        _, err = p.communicate()
        assert p.returncode == 0, err.decode(errors="replace")
        completions += 1
        assert_same(files, outputs(out), f"a rerun after kills (in stages {hit})")
        shutil.rmtree(out)
    assert kills >= 20, f"only {kills} kills landed"
    run(tokenmill_bin, "build", corpus, "--out", out, "--threads", "2", "--quiet")
    assert_same(files, outputs(out), f"the final rerun after {kills} kills (in stages {hit})")
    assert len(set(hit)) >= 3, f"kills landed in too few stages: {hit}"


def test_changed_spec_or_input_is_refused_and_force_starts_over(tokenmill_bin, corpus, reference, tmp_path):
    if current_units != UNITS["repo"]:
        pytest.skip("the repository's corpus covers this; the shared one adds only time")
    work = tmp_path / "w"
    shutil.copytree(corpus.parent, work, ignore=shutil.ignore_patterns("out"))
    spec = work / "spec.json"
    out = tmp_path / "out"
    run(tokenmill_bin, "build", spec, "--out", out, "--stage", "scan", "--quiet")
    changed = json.loads(spec.read_text())
    changed["output"]["zstd_level"] = 5
    spec.write_text(json.dumps(changed))
    r = run(tokenmill_bin, "build", spec, "--out", out, "--quiet", check=False)
    assert r.returncode == 2 and b"--force" in r.stderr and b"spec" in r.stderr, r.stderr
    run(tokenmill_bin, "build", spec, "--out", out, "--quiet", "--force")
    fresh = tmp_path / "fresh"
    run(tokenmill_bin, "build", spec, "--out", fresh, "--quiet")
    assert_same(outputs(fresh), outputs(out), "--force after a spec change")
    # A changed input, after a partial build, is refused the same way.
    run(tokenmill_bin, "build", spec, "--out", out, "--stage", "scan", "--quiet", "--force")
    part = work / "parts" / "part-01.jsonl"
    part.write_text(part.read_text() + json.dumps({"instruction": "new row", "input": "", "output": "x"}) + "\n")
    r = run(tokenmill_bin, "build", spec, "--out", out, "--quiet", check=False)
    assert r.returncode == 2 and b"inputs" in r.stderr, r.stderr


def test_a_later_stage_before_its_prerequisites_is_a_usage_error(tokenmill_bin, corpus, tmp_path):
    out = tmp_path / "out"
    r = run(tokenmill_bin, "build", corpus, "--out", out, "--stage", "pack", check=False)
    assert r.returncode == 2 and b"scan" in r.stderr, r.stderr
    run(tokenmill_bin, "build", corpus, "--out", out, "--stage", "scan", "--quiet")
    r = run(tokenmill_bin, "build", corpus, "--out", out, "--stage", "shape", check=False)
    assert r.returncode == 2 and b"exact" in r.stderr, r.stderr
    assert not (out / "index.json").exists()


def rewrite_work_file(path: Path, content: bytes) -> None:
    """A work file as the tool writes it: content, then size, xxh3-64 and magic (docs/PIPELINE.md)."""
    path.write_bytes(content + struct.pack("<QQQ", len(content), xxhash.xxh3_64_intdigest(content), 0x4B524F574D4B5400))


def test_the_accounting_check_can_fail(tokenmill_bin, corpus, tmp_path):
    """A record lost between the readers and the buckets stops the build before index.json."""
    out = tmp_path / "out"
    stages = plan_stages(tokenmill_bin, corpus)
    for stage in stages[: stages.index("shape") + 1]:
        run(tokenmill_bin, "build", corpus, "--out", out, "--stage", stage, "--quiet")
    marker = out / ".work" / "shape" / "0.done"
    content = marker.read_bytes()[:-24]
    doc = json.loads(content)
    doc["result"]["sources"][0]["kept"] -= 1
    rewrite_work_file(marker, json.dumps(doc).encode())
    for stage in stages[stages.index("shape") + 1 :]:
        r = run(tokenmill_bin, "build", corpus, "--out", out, "--stage", stage, "--quiet", check=False)
        if r.returncode != 0:
            break
    assert r.returncode == 1 and b"accounting check failed" in r.stderr, r.stderr
    assert not (out / "index.json").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["checks"]["alpaca"]["ok"] is False


def data_sections(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each section of a scan unit's data file (docs/PIPELINE.md): the
    content ends with a table of (offset, size) per section, the count and a magic; a
    24-byte trailer follows."""
    content = data[:-24]
    count, magic = struct.unpack_from("<QQ", content, len(content) - 16)
    assert magic == int.from_bytes(b"KMSSECT1", "little"), magic
    at = len(content) - 16 - 16 * count
    return [struct.unpack_from("<QQ", content, at + 16 * k) for k in range(count)]


def test_a_damaged_work_file_is_an_error_not_wrong_bytes(tokenmill_bin, corpus, tmp_path):
    out = tmp_path / "out"
    run(tokenmill_bin, "build", corpus, "--out", out, "--stage", "scan", "--quiet")
    rows = out / ".work" / "scan" / "0.rows"
    b = bytearray(rows.read_bytes())
    b[10] ^= 0xFF
    rows.write_bytes(bytes(b))
    r = run(tokenmill_bin, "build", corpus, "--out", out, "--quiet", check=False)
    assert r.returncode == 65 and b"0.rows" in r.stderr and b"checksum" in r.stderr, r.stderr


@pytest.mark.parametrize("where", ["keys", "table"])
def test_a_damaged_data_section_is_an_error_not_wrong_bytes(tokenmill_bin, corpus, tmp_path, where):
    """The exact keys live in a section of each scan unit's data file, after its ids: a
    flipped byte there fails the checksum of its hash range (which the exact stage reads
    and checks), and a damaged section table is refused before any read."""
    out = tmp_path / "out"
    run(tokenmill_bin, "build", corpus, "--out", out, "--stage", "scan", "--quiet")
    data = out / ".work" / "scan" / "0.data"
    b = bytearray(data.read_bytes())
    keys_at, keys_size = data_sections(bytes(b))[0]
    assert keys_size > 200
    if where == "keys":
        b[keys_at + keys_size - 5] ^= 0xFF   # a byte of the last key entry
    else:
        b[len(b) - 24 - 16] ^= 0x40          # the section count: the table no longer fits
    data.write_bytes(bytes(b))
    r = run(tokenmill_bin, "build", corpus, "--out", out, "--quiet", check=False)
    assert r.returncode == 65 and b"0.data" in r.stderr, r.stderr
    assert (b"checksum" if where == "keys" else b"section table") in r.stderr, r.stderr


def test_quiet_prints_nothing_and_the_report_has_every_stage(tokenmill_bin, corpus, tmp_path):
    out = tmp_path / "out"
    r = run(tokenmill_bin, "build", corpus, "--out", out, "--quiet")
    assert r.stderr == b"" and r.stdout == b""
    r = run(tokenmill_bin, "build", corpus, "--out", tmp_path / "loud")
    lines = r.stderr.decode().splitlines()
    stages = plan_stages(tokenmill_bin, corpus)
    for s in stages:
        assert any(l.startswith(s + ":") for l in lines), (s, lines)
    report = json.loads((out / "report.json").read_text())
    got = [s["stage"] for s in report["stages"]]
    assert got == stages[:-1], got
    for s in report["stages"]:
        for k in ("wall_seconds", "cpu_seconds", "records_in", "bytes_in", "bytes_out", "mb_per_second", "peak_rss_bytes", "units"):
            assert k in s, (k, s)
    scan = report["stages"][0]
    assert scan["records_in"] > 0 and scan["bytes_in"] > 0 and scan["peak_rss_bytes"] > 0
    for name, c in report["checks"].items():
        assert c["ok"] and c["records_read"] == c["records_in_buckets"], (name, c)
    index = json.loads((out / "index.json").read_text())
    for name, s in index["sources"].items():
        buckets = sum(s[k] for k in ("filtered", "exact_dup", "near_dup", "decontaminated", "over_take", "subsampled",
                                    "overflow_dropped", "truncated", "kept"))
        assert buckets == s["records"], (name, s)


def test_plan_scripts(tokenmill_bin, corpus, tmp_path):
    stages = plan_stages(tokenmill_bin, corpus)
    script = run(tokenmill_bin, "plan", corpus, "--slurm", "--tasks", "3", "--cpus-per-task", "2").stdout.decode()
    assert script.startswith("#!/bin/bash")
    (tmp_path / "job.sh").write_text(script)
    assert subprocess.run(["bash", "-n", str(tmp_path / "job.sh")]).returncode == 0
    for s in stages:
        assert f"--job-name=tkm-{s}" in script, s
    assert script.count("--dependency=afterok") == len(stages)
    assert "--cpus-per-task=2" in script and "--array=0-2" in script and "--array=0-0" in script
    manifests = run(tokenmill_bin, "plan", corpus, "--k8s", "--tasks", "3").stdout.decode()
    assert manifests.count("kind: Job") == len(stages) and "completionMode: Indexed" in manifests


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of a few MB (root only; skipped where mount is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode(errors='replace').strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_disk_full_stops_cleanly_and_a_rerun_resumes(tokenmill_bin, corpus, reference, small_disk):
    if current_units != UNITS["repo"]:
        pytest.skip("the repository's corpus covers this")
    files, _ = reference
    out = small_disk / "out"
    # Obviously too small: refused before anything is written.
    r = run(tokenmill_bin, "build", corpus, "--out", out, "--quiet", check=False)
    assert r.returncode == 74 and b"free" in r.stderr, r.stderr
    # Room for the estimate, not for the whole build: stops mid-way with exit 74 and says why.
    inputs = sum(p.stat().st_size for p in (corpus.parent / "parts").iterdir()) + (REPO / "Specs" / "data" / "alpaca_zh_500.jsonl").stat().st_size \
        + (REPO / "Specs" / "data" / "python_peps_40.jsonl").stat().st_size
    subprocess.run(["mount", "-o", f"remount,size={2 * inputs + (256 << 10)}", str(small_disk)], check=True)
    r = run(tokenmill_bin, "build", corpus, "--out", out, "--quiet", check=False)
    assert r.returncode == 74 and b"No space left" in r.stderr and b"run the same command again" in r.stderr, r.stderr
    assert not (out / "index.json").exists()
    done_before = sum(1 for _ in (out / ".work").glob("*/*.done"))
    assert done_before > 0, "some units should have committed before the disk filled"
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    run(tokenmill_bin, "build", corpus, "--out", out, "--quiet")
    assert_same(files, outputs(out), "the rerun after ENOSPC")


def test_a_50_mb_record_builds_exactly_and_costs_about_its_size(tokenmill_bin, tmp_path):
    """One 50 MB record between two small ones, with every dedup step on: its tokens are
    tiktoken's, and the scan's peak memory is a small multiple of the record (the bound
    for ordinary records is 256 MiB + 256 bytes a record; a huge record costs its size)."""
    import numpy as np
    from tiktoken_offline import get_encoding

    from tokenmill import Dataset

    rng = random.Random(3)
    vocab = [f"{w}{k}" for w in ("alpha", "beta", "gamma", "delta", "zeta", "theta", "kappa") for k in range(300)]
    words, size = [], 0
    while size < 50_000_000:
        w = rng.choice(vocab)
        words.append(w)
        size += len(w) + 1
    big = " ".join(words)
    texts = ["a small first record", big, "a small last record, " + "übung 中文 " * 3]
    (tmp_path / "big.jsonl").write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "name": "big", "sources": [{"name": "b", "path": "big.jsonl", "map": {"text": "text"}}],
        "dedup": {"exact": True, "near": {"threshold": 0.8}}, "tokenizer": "cl100k_base", "template": "plain",
        "pack": {"seq_len": 2048, "strategy": "concat"}, "output": {"dir": "out"}}), encoding="utf-8")
    run(tokenmill_bin, "build", spec, "--threads", "2", "--quiet", unit_bytes=None)
    out = tmp_path / "out"
    enc = get_encoding("cl100k_base")
    eos = enc.eot_token
    expected = []
    for t in texts:
        expected += enc.encode_ordinary(t.strip()) + [eos]   # normalize trims (on by default)
    ds = Dataset(str(out), "train")
    got = np.concatenate([ds[i]["input_ids"] for i in range(len(ds))])
    assert len(got) == len(expected)
    assert np.array_equal(got, np.asarray(expected, dtype=got.dtype)), "the big record's tokens differ from tiktoken's"
    report = json.loads((out / "report.json").read_text())
    scan_peak = next(s["peak_rss_bytes"] for s in report["stages"] if s["stage"] == "scan")
    assert scan_peak < (256 << 20) + 10 * len(big), f"scan peaked at {scan_peak >> 20} MiB for a {len(big) >> 20} MiB record"


def test_parquet_row_groups_are_units_and_give_the_jsonl_bytes(tokenmill_bin, tmp_path):
    """A Parquet file larger than a unit is cut into units of whole row groups (read from
    a mapping whose pages are dropped after each group); the shards equal those of the same
    rows as JSONL, with any unit size and thread count, and memory stays within the bound."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = alpaca_rows(REPO / "Specs" / "data" / "alpaca_en_2000.json")
    pq.write_table(pa.table({k: [r[k] for r in rows] for k in ("instruction", "input", "output")}), tmp_path / "data.parquet",
                   row_group_size=97)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name in ("data.parquet", "data.jsonl"):
        (tmp_path / f"{name}.spec.json").write_text(json.dumps({
            "name": "pq", "sources": [{"name": "s", "path": name, "map": {"prompt": "{instruction}[[\n\n{input}]]", "response": "output"}}],
            "dedup": {"exact": True, "near": {"threshold": 0.8}}, "split": {"validation": 0.05, "seed": 3},
            "tokenizer": "cl100k_base", "template": "chatml", "pack": {"seq_len": 1024, "strategy": "best-fit"},
            "output": {"dir": f"out-{name}", "shard_tokens": 50000}}), encoding="utf-8")
    spec = tmp_path / "data.parquet.spec.json"
    plan = run(tokenmill_bin, "plan", spec, unit_bytes="40000").stdout.decode()
    units = int(plan.splitlines()[0].split()[1])
    assert units > 5, plan
    run(tokenmill_bin, "build", tmp_path / "data.jsonl.spec.json", "--quiet", unit_bytes=None)
    reference_files = {n: b for n, b in outputs(tmp_path / "out-data.jsonl").items() if n.endswith(".tkm")}
    assert len(reference_files) >= 3
    for threads, unit in [(2, "40000"), (1, "40000"), (2, None)]:
        out = tmp_path / f"out-{threads}-{unit}"
        run(tokenmill_bin, "build", spec, "--out", out, "--threads", str(threads), "--quiet", unit_bytes=unit)
        got = {n: b for n, b in outputs(out).items() if n.endswith(".tkm")}
        assert got == reference_files, f"Parquet build ({threads} threads, units {unit}) differs from the JSONL build"
        report = json.loads((out / "report.json").read_text())
        peak = max(s["peak_rss_bytes"] for s in report["stages"])
        assert peak < (256 << 20) + 256 * len(rows), f"peak RSS {peak >> 20} MiB"
        index = json.loads((out / "index.json").read_text())
        assert index["sources"]["s"]["read"] == len(rows)
