"""benchmarks/attacks.py runs: its cheapest attack (text log forging: one service, one raw request) once, so the
script cannot rot unnoticed between the runs that fill benchmarks/attacks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_log_forging_attack_finds_no_forged_line() -> None:
    run = subprocess.run(
        [sys.executable, "benchmarks/attacks.py", "--only", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    [line] = [line for line in run.stdout.splitlines() if line.startswith("8 ")]
    assert "no forged line; logged as 'path=/\\\\r\\\\nCRITICAL forged'" in line, line
