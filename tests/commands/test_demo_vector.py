"""`edgemtl demo --kind vector`: the whole tabular path on a few hundred rows, and what its report holds."""

from __future__ import annotations

import json

import pytest

from edgemtl.commands.demo_vector import VectorDemoConfig, run_vector_demo
from edgemtl.train.config import load_config

pytestmark = pytest.mark.slow


def test_the_vector_demo_compares_multi_task_single_task_and_a_baseline(tmp_path):
    config = VectorDemoConfig(epochs=2, rows={"train": 300, "val": 80, "test": 120}, preset="nano")
    report = run_vector_demo(tmp_path / "demo", config, log=lambda _: None)
    facts = json.loads((report.out_dir / "report.json").read_text())
    rows = {row["task"]: row for row in facts["comparison"]}
    assert set(rows) == {"risk", "pressure", "conditions"}
    for row in rows.values():
        assert {"multi", "single", "baseline", "at_least_baseline"} <= set(row)
        assert row["at_least_baseline"] == (
            row["multi"] >= row["baseline"] if row["higher_is_better"] else row["multi"] <= row["baseline"]
        )
    assert 0.2 < rows["risk"]["multi"] <= 1 and rows["pressure"]["multi"] > 0
    assert max(facts["max_parity_diff"]["risk_probs"], facts["max_parity_diff"]["conditions_probs"]) <= 1e-5
    assert facts["engine_latency_ms_batch1"] > 0
    markdown = (report.out_dir / "report.md").read_text()
    assert "| risk | accuracy |" in markdown and "HistGradientBoosting" in markdown
    # The run's configuration is a file `edgemtl train --config` reads back, pointing at the demo's table.
    run = load_config(report.out_dir / "config.json")
    assert run.train.input == "vector" and run.data.train == str(report.out_dir / "table.csv")
