"""Vector models: Engine latency at batch 1 (and a few batch sizes) of the demo's multi-task MLP, per preset
and thread count, against PyTorch eager on the same whole computation (raw rows in, results out).

Each preset is trained briefly on the demo's synthetic records (latency does not depend on how well), exported
to fp32 ONNX and timed; in each of `--repeats` rounds every call runs `--runs` times in a row (as an
application calls its one model: warm caches), the calls taking turns round by round so machine load drifts
over them alike; each figure is the median over the rounds. Batch sizes are interleaved call by call.
Prints Markdown tables with the machine, date and load average, for docs/benchmarks.md.

    python benchmarks/vector.py [--runs 2000] [--repeats 5] [--presets nano small base]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgemtl.data import TableColumns, training_sets, write_table
from edgemtl.data.synthetic.tabular import FEATURE_NAMES, TABULAR_TASKS, make_table
from edgemtl.deploy import ExportWrapper, export_onnx
from edgemtl.machine import describe_machine
from edgemtl.model import input_preprocess
from edgemtl.runtime import Engine
from edgemtl.runtime.timing import time_calls, time_interleaved
from edgemtl.train import TrainConfig, load_checkpoint, train


def export_preset(preset: str, folder: Path, train_set, val_set) -> tuple[Path, torch.nn.Module]:
    config = TrainConfig(input="vector", preset=preset, epochs=2, batch_size=128, plots=False, device="cpu")
    result = train(config, TABULAR_TASKS, train_set, val_set, folder / preset, progress=False, log=lambda _: None)
    checkpoint = load_checkpoint(result.best_checkpoint)
    path = export_onnx(checkpoint, folder / f"{preset}.onnx", verify_data=val_set).path
    preprocess = input_preprocess(checkpoint.mean, checkpoint.std, checkpoint.features)
    wrapper = ExportWrapper(checkpoint.build_model(), checkpoint.mean, checkpoint.std, preprocess=preprocess).eval()
    return path, wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presets", nargs="+", default=["nano", "small", "base"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64, 1024])
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        table = write_table(folder / "table.csv", make_table({"train": 2000, "val": 400}), TABULAR_TASKS)
        opened = {"size": None, "tasks": TABULAR_TASKS, "train_count": 0, "val_count": 0, "seed": 0}
        train_set, val_set = training_sets(table, None, columns=TableColumns(FEATURE_NAMES), **opened)
        models = {preset: export_preset(preset, folder, train_set, val_set) for preset in args.presets}
        print(f"{len(models)} presets trained and exported", file=sys.stderr)
        row = np.asarray(train_set.features[:1])
        calls = {}
        for preset, (path, wrapper) in models.items():
            for threads in (1, 2):
                engine = Engine(path, device="cpu", threads=threads)
                calls[(preset, f"Engine.run, {threads} thread{'s' * (threads > 1)}")] = lambda e=engine: e.run(row)
                if threads == 1:
                    calls[(preset, "Engine.predict_features, 1 thread")] = lambda e=engine: e.predict_features(row)
            tensor = torch.from_numpy(row)
            calls[(preset, "PyTorch eager, 1 thread")] = lambda w=wrapper, t=tensor: w(t)
        with torch.inference_mode():  # rounds interleave the calls; within a round, one call runs `runs` times
            rounds = [
                {key: time_calls(call, args.runs, warmup=50) for key, call in calls.items()}
                for _ in range(args.repeats)
            ]
        batch_calls = {}
        for preset, (path, _) in models.items():
            engine = Engine(path, device="cpu", threads=1)
            for batch in args.batches:
                rows = np.ascontiguousarray(train_set.features[:batch])
                batch_calls[(preset, batch)] = lambda e=engine, r=rows: e.run(r)
        batch_rounds = [time_interleaved(batch_calls, max(20, args.runs // 20), warmup=5) for _ in range(args.repeats)]
    load_after = os.getloadavg()
    print(f"Machine: {describe_machine()}")
    print(f"Date: {datetime.date.today()}; load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print(f"Median over {args.repeats} interleaved rounds of {args.runs} calls, one (1, 12) row of raw features.\n")
    print("| preset | call | p50 (ms) | p90 (ms) | fastest call (ms) |")
    print("|---|---|---|---|---|")
    for key in calls:
        p50 = np.median([np.percentile(r[key], 50) for r in rounds]) * 1e3
        p90 = np.median([np.percentile(r[key], 90) for r in rounds]) * 1e3
        fastest = min(r[key].min() for r in rounds) * 1e3  # what an undisturbed call costs
        print(f"| {key[0]} | {key[1]} | {p50:.3f} | {p90:.3f} | {fastest:.3f} |")
    print("\n| preset | batch | Engine.run p50 (ms) | rows per second |")
    print("|---|---|---|---|")
    for preset, batch in batch_calls:
        p50 = np.median([np.percentile(r[(preset, batch)], 50) for r in batch_rounds])
        print(f"| {preset} | {batch} | {p50 * 1e3:.3f} | {batch / p50:,.0f} |")


if __name__ == "__main__":
    main()
