"""A real Slurm cluster, not a simulation: `tokenmill plan --slurm` submitted with sbatch.

Starts a one-node cluster from Debian's packages (Tests/slurm/start_cluster.sh: slurmctld,
slurmd, munge; root or passwordless sudo), submits the script `plan --slurm` prints for a
spec with every stage on (3 tasks a multi-unit stage), waits for the last job and compares
the output byte for byte with a one-process build. Skipped, saying why, where the
cluster cannot be started. Also: the `plan --k8s` manifests against the Kubernetes API
schema (kubernetes-validate, when installed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import test_staged_build as staged

pytestmark = pytest.mark.binary

REPO = Path(__file__).resolve().parents[2]
START = REPO / "Tests" / "slurm" / "start_cluster.sh"


@pytest.fixture(scope="module")
def cluster():
    if os.environ.get("TOKENMILL_NO_SLURM"):
        pytest.skip("TOKENMILL_NO_SLURM is set")
    r = subprocess.run(["bash", str(START)], capture_output=True, timeout=600)
    if r.returncode != 0:
        pytest.skip(f"no Slurm cluster here: {r.stderr.decode(errors='replace').strip()[-300:]}")
    return True


def wait_for(job: str, out: Path, timeout: float = 600) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        q = subprocess.run(["squeue", "-h", "-o", "%i %T %r"], capture_output=True, text=True).stdout
        if "DependencyNeverSatisfied" in q:
            raise AssertionError(f"a stage failed, the rest will never run:\n{q}")
        if not q.strip() and (out / "index.json").exists():
            return
        if not q.strip() and time.monotonic() - t0 > 5:
            break
        time.sleep(0.5)
    raise AssertionError(f"job {job} did not produce {out}/index.json; queue: {q!r}")


def test_plan_slurm_submitted_with_sbatch_gives_the_one_process_bytes(cluster, tokenmill_bin, tmp_path):
    folder = tmp_path / "corpus"
    rows = staged.alpaca_rows(REPO / "Specs" / "data" / "alpaca_en_2000.json")
    staged.write_corpus(folder / "parts", rows)
    spec = staged.write_spec(folder, REPO / "Specs" / "data" / "python_peps_40.jsonl")
    env = staged.env("65536")
    one = tmp_path / "one"
    subprocess.run([str(tokenmill_bin), "build", str(spec), "--out", str(one), "--quiet"], env=env, check=True)
    out = tmp_path / "slurm-out"
    script = subprocess.run([str(tokenmill_bin), "plan", str(spec), "--slurm", "--tasks", "3", "--cpus-per-task", "1",
                             "--out", str(out), "--logs", str(tmp_path / "logs")], env=env, check=True, capture_output=True).stdout
    (tmp_path / "job.sh").write_bytes(script)
    r = subprocess.run(["bash", str(tmp_path / "job.sh")], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    try:
        wait_for(last, out)
    except AssertionError:
        logs = "\n".join(p.read_text(errors="replace")[-500:] for p in sorted((tmp_path / "logs").glob("*.log")))
        raise AssertionError(f"{last}\n{logs}")
    staged.assert_same(staged.outputs(one), staged.outputs(out), "the Slurm build")
    # Every multi-unit stage really ran as 3 array tasks.
    logs = sorted(p.name for p in (tmp_path / "logs").glob("tkm-scan_*.log"))
    assert len(logs) == 3, logs


def test_plan_k8s_manifests_validate_against_the_api_schema(tokenmill_bin, tmp_path):
    kv = shutil.which("kubernetes-validate") or str(Path(os.sys.executable).parent / "kubernetes-validate")
    if not Path(kv).exists():
        pytest.skip("kubernetes-validate is not installed (pip install kubernetes-validate)")
    spec = REPO / "Specs" / "demo.json"
    manifests = subprocess.run([str(tokenmill_bin), "plan", str(spec), "--k8s", "--tasks", "4", "--image", "registry.example/tokenmill:1"],
                               check=True, capture_output=True).stdout
    path = tmp_path / "jobs.yaml"
    path.write_bytes(manifests)
    r = subprocess.run([kv, "--strict", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "ERROR" not in r.stdout, r.stdout + r.stderr
    jobs = manifests.decode().count("kind: Job")
    assert jobs >= 6 and r.stdout.count(" passed for resource job/") == jobs, r.stdout
