"""benchmarks/gpu_check.sh in dry-run form, on the CPU: every step's command must exist and parse before the
day a GPU is lent, and a missing script must fail the dry run, not the GPU run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = ("models", "cuda", "tests", "engine", "graphs", "frame-size", "multicam", "detection", "tensorrt")


def _dry_run(root: Path, out: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        ["bash", str(root / "benchmarks" / "gpu_check.sh"), "--dry-run", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _rows(results: Path) -> dict[str, str]:
    """step → status, from the results file's table."""
    rows = {}
    for line in results.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] not in ("step",):
            rows[cells[0]] = cells[1]
    return rows


def test_dry_run_checks_every_step_and_marks_it_not_run(tmp_path):
    done = _dry_run(ROOT, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    results = tmp_path / "gpu_results.md"
    assert "dry run: nothing was run" in results.read_text()
    rows = _rows(results)
    for step in STEPS:
        assert rows[step] == "not run (dry run)", (step, rows)


@pytest.mark.parametrize("missing", ["benchmarks/frame_size.py"])
def test_dry_run_fails_when_a_step_script_is_missing(tmp_path, missing):
    tree = tmp_path / "tree"
    for folder in ("benchmarks", "tests"):  # the whole test tree: conftest.py imports its helpers
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    (tree / missing).unlink()
    done = _dry_run(tree, tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(tmp_path / "out" / "gpu_results.md")
    broken = [status for status in rows.values() if status.startswith("BROKEN")]
    assert broken and all(f"{missing} is missing" in status for status in broken), rows
