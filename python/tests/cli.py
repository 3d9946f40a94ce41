"""Running the tokenmill binary from tests, with failures that show what it printed."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run(binary: Path, *args: object, input: bytes | None = None, check: bool = True, timeout: float = 900):
    """Run ``binary args...``; when ``check``, a non-zero exit fails the test with its stderr."""
    command = [str(binary), *map(str, args)]
    result = subprocess.run(command, input=input, capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"`{' '.join(command)}` exited {result.returncode}\n"
            f"stderr: {result.stderr.decode(errors='replace')[-3000:]}\n"
            f"stdout: {result.stdout.decode(errors='replace')[-1000:]}"
        )
    return result


def build(binary: Path, spec: Path, out: Path, threads: int = 2) -> Path:
    run(binary, "build", spec, "--out", out, "--threads", threads, "--quiet")
    assert (out / "index.json").is_file(), f"build of {spec} wrote no {out}/index.json"
    return out
