"""`edgemtl demo --kind vector`: the tabular path in one go, and what multi-task learning buys there.

Synthetic health records (shared latent factors, partial labels) → a CSV table → train the multi-task MLP
from a configuration as `edgemtl train` would → export to ONNX (parity checked) → score the held-out test
split through the Engine → compare with one single-task net per task and a scikit-learn gradient-boosting
baseline, all on the same split. The report says whether each task is at least as good as the baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgemtl import __version__, jsonfile
from edgemtl.commands.baseline import BASELINE, baseline_scores
from edgemtl.commands.train import TrainOptions, run_train
from edgemtl.data import TableColumns, open_dataset, training_sets, write_table
from edgemtl.data.synthetic.tabular import FEATURE_NAMES, SPLIT_ROWS, TABULAR_TASKS, make_table
from edgemtl.deploy import export_onnx
from edgemtl.features import VECTOR
from edgemtl.machine import describe_machine
from edgemtl.metrics import higher_is_better, primary_metric
from edgemtl.paths import fresh_dir
from edgemtl.runtime import Engine
from edgemtl.runtime.scoring import score_engine
from edgemtl.runtime.timing import median_ms, time_calls
from edgemtl.train import TrainConfig, load_checkpoint, train
from edgemtl.train.config import DataConfig, RunConfig, save_config


@dataclass
class VectorDemoConfig:
    epochs: int = 30
    rows: dict[str, int] = field(default_factory=lambda: dict(SPLIT_ROWS))
    labelled_share: float = 0.3  # of the training rows, per task: records are rarely fully labelled
    preset: str = "small"
    batch_size: int = 128
    learning_rate: float = 3e-3
    weighting: str = "fixed"  # the tasks' own weights (the pressure's squared mmHg weighted down)
    seed: int = 0
    device: str = "cpu"  # an MLP this small runs no faster on a GPU


@dataclass
class VectorDemoReport:
    out_dir: Path
    seconds: dict[str, float] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)


def run_config(config: VectorDemoConfig, table: Path) -> RunConfig:
    """The demo's training configuration: what `edgemtl train --config` reads back from config.toml."""
    train_config = TrainConfig(
        input=VECTOR,
        preset=config.preset,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        weighting=config.weighting,
        seed=config.seed,
        device=config.device,
        plots=False,  # one set of plots after training instead of per epoch: the demo is timed
    )
    return RunConfig(train=train_config, tasks=TABULAR_TASKS, data=DataConfig(train=str(table), features=FEATURE_NAMES))


def _comparison(tasks, multi, single, baseline) -> list[dict]:
    rows = []
    for task in tasks:
        metric = primary_metric(task)
        values = {
            name: scores[task.name][metric]
            for name, scores in (("multi", multi), ("single", single), ("baseline", baseline))
        }
        better = higher_is_better(task)
        rows.append(
            {
                "task": task.name,
                "metric": metric,
                **values,
                "higher_is_better": better,
                "at_least_baseline": values["multi"] >= values["baseline"]
                if better
                else values["multi"] <= values["baseline"],
            }
        )
    return rows


def run_vector_demo(
    out_dir: Path, config: VectorDemoConfig, *, progress: bool = False, log: Callable[[str], None] = print
) -> VectorDemoReport:
    """Everything lands in `out_dir` (a new numbered folder if it holds files); report.md and report.json."""
    import torch

    torch.set_num_threads(1)  # MLPs this small run fastest on one thread, and a shared CPU has no spare core
    out_dir = fresh_dir(Path(out_dir))
    report = VectorDemoReport(out_dir)
    clock, cpu = time.perf_counter(), time.process_time()
    timer = clock

    def lap(stage: str) -> None:
        nonlocal timer
        now = time.perf_counter()
        report.seconds[stage] = round(now - timer, 1)
        timer = now

    rows = config.rows
    log(f"[1/5] generating {rows['train']} + {rows['val']} + {rows['test']} synthetic health records -> table.csv")
    table = write_table(out_dir / "table.csv", make_table(rows, config.seed, config.labelled_share), TABULAR_TASKS)
    run = run_config(config, table)
    save_config(run, out_dir / "config.json")  # `edgemtl train --config config.json` repeats the run
    lap("data")

    log(f"[2/5] training the multi-task {config.preset} MLP ({len(TABULAR_TASKS)} tasks) for {config.epochs} epochs")
    result = run_train(TrainOptions(config=run, out=out_dir / "multitask", progress=progress), log=lambda _: None)
    columns = TableColumns(FEATURE_NAMES)
    opened = {"size": None, "tasks": TABULAR_TASKS, "train_count": 0, "val_count": 0, "seed": config.seed}
    train_set, val_set = training_sets(table, None, columns=columns, **opened)
    test_set = open_dataset(table, "test", size=None, tasks=TABULAR_TASKS, columns=columns).filled(
        train_set.statistics()
    )
    lap("train multi-task")

    log("[3/5] training one single-task net per task, same preset, epochs and split")
    single: dict[str, dict[str, float]] = {}
    for task in TABULAR_TASKS:
        folder = out_dir / f"single_{task.name}"
        outcome = train(run.train, (task,), train_set, val_set, folder, progress=False, log=lambda _: None)
        checkpoint = load_checkpoint(outcome.best_checkpoint)
        single |= _pytorch_scores(checkpoint, test_set)
    lap("train single-task")

    log(f"[4/5] exporting the multi-task net to ONNX; scoring it on {len(test_set)} held-out rows with the Engine")
    model_path = out_dir / "model.onnx"
    exported = export_onnx(load_checkpoint(result.best_checkpoint), model_path, verify_data=val_set, overwrite=True)
    engine = Engine(model_path, device="cpu", threads=1)
    multi = score_engine(engine, test_set.features, test_set.targets)
    one_row = test_set.features[:1]
    latency = median_ms(time_calls(lambda: engine.run(one_row), runs=300, warmup=20))
    predict_latency = median_ms(time_calls(lambda: engine.predict_features(one_row), runs=300, warmup=20))
    lap("export + evaluate")

    log(f"[5/5] {BASELINE}: one model per task (per label, per value) on the same training rows")
    baseline = baseline_scores(train_set, test_set, TABULAR_TASKS, config.seed)
    lap("baseline")

    report.seconds["total"] = round(time.perf_counter() - clock, 1)
    report.seconds["cpu"] = round(time.process_time() - cpu, 1)
    report.facts = {
        "edgemtl_version": __version__,
        "machine": describe_machine(),
        "preset": config.preset,
        "rows": rows,
        "labelled_share": config.labelled_share,
        "comparison": _comparison(TABULAR_TASKS, multi, single, baseline),
        "test_onnx": multi,
        "max_parity_diff": {c.output: c.value for c in exported.parity.checks if c.measure == "max_abs_diff"},
        "engine_latency_ms_batch1": round(latency, 4),
        "predict_features_latency_ms_batch1": round(predict_latency, 4),
        "files": {"table": str(table), "model": str(model_path), "config": str(out_dir / "config.json")},
    }
    (out_dir / "report.json").write_text(jsonfile.dumps({"seconds": report.seconds, **report.facts}, indent=2))
    (out_dir / "report.md").write_text(render_markdown(report))
    return report


def _pytorch_scores(checkpoint, data) -> dict[str, dict[str, float]]:
    from edgemtl.model import input_preprocess
    from edgemtl.train.validate import validate_model

    preprocess = input_preprocess(checkpoint.mean, checkpoint.std, checkpoint.features)
    return validate_model(checkpoint.build_model(), data, preprocess)


def render_markdown(report: VectorDemoReport) -> str:
    facts = report.facts
    lines = [
        "# edgemtl vector demo report",
        "",
        f"edgemtl {facts['edgemtl_version']}, vector preset {facts['preset']}; machine {facts['machine']}.",
        f"Rows: {facts['rows']}; each task labelled on {facts['labelled_share']:.0%} of the training rows.",
        "",
        "## Held-out test split",
        "",
        f"| task | metric | multi-task (.onnx) | single-task nets | {BASELINE} | at least the baseline |",
        "|---|---|---|---|---|---|",
    ]
    for row in facts["comparison"]:
        verdict = "yes" if row["at_least_baseline"] else "NO"
        lines.append(
            f"| {row['task']} | {row['metric']} | {row['multi']:.4f} | {row['single']:.4f} | {row['baseline']:.4f} "
            f"| {verdict} |"
        )
    parity = ", ".join(f"{name} {value:.2g}" for name, value in facts["max_parity_diff"].items())
    lines += [
        "",
        f"ONNX vs PyTorch max |difference| (validation rows): {parity}",
        f"Engine latency at batch 1: {facts['engine_latency_ms_batch1']} ms (graph), "
        f"{facts['predict_features_latency_ms_batch1']} ms (predict_features: checks + results), one thread",
        "",
        "Time per stage (s): " + " · ".join(f"{stage} {seconds}" for stage, seconds in report.seconds.items()),
        "",
    ]
    lines += [f"- {name}: `{path}`" for name, path in facts["files"].items()]
    return "\n".join(lines) + "\n"
