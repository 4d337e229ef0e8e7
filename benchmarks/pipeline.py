"""The README's runtime tables: `edgemtl bench` per preset, per engine setting, with PyTorch eager beside.

Random-weight models exported as `edgemtl export` does (speed does not depend on the weights). For
each preset and each engine setting: engine-only latency and throughput at batch 1 and 8, end to end
(a 480x640 camera frame → predict → overlay), PyTorch eager on the same computation, and the camera
pipeline on a synthetic 480x640 drive video against the model alone on the same frames. Every
provider usable here is measured; the others are listed with the reason.

    python benchmarks/pipeline.py [--presets nano small] [--runs 300] [--pipeline-frames 1000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from speed import export_random

from edgemtl.commands.bench import BENCH_DEVICES, BenchReport, run_bench
from edgemtl.machine import describe_machine
from edgemtl.runtime import EngineOptions

# (devices, engine setting): ORT's defaults everywhere (on a CPU one thread per core, idle threads spinning;
# on a GPU I/O binding to device buffers); then, on a CPU, what suits a pipeline on a small CPU: one
# inference thread that sleeps when idle, leaving the other core to decoding and drawing; on a GPU, plain
# host-to-host runs without I/O binding, and CUDA graphs on top of I/O binding.
SETTINGS = (
    (BENCH_DEVICES, EngineOptions()),
    (("cpu",), EngineOptions(threads=1, spinning=False)),
    (("cuda",), EngineOptions(io_binding=False)),
    (("cuda",), EngineOptions(cuda_graph=True)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nano", "small"])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--pipeline-frames", type=int, default=1000)
    args = parser.parse_args()
    total = BenchReport(describe_machine())
    with tempfile.TemporaryDirectory() as folder:
        for preset in args.presets:
            model, checkpoint = export_random(preset, Path(folder))
            for index, (devices, options) in enumerate(SETTINGS):
                report = run_bench(
                    [model],
                    devices=devices,
                    batches=tuple(args.batches),
                    runs=args.runs,
                    options=options,
                    checkpoint=checkpoint if index == 0 else None,  # one PyTorch row per preset
                    pipeline_frames=args.pipeline_frames,
                )
                total.rows += report.rows
                total.pipelines += report.pipelines
                total.notes += [note for note in report.notes if note not in total.notes and index == 0]
    for line in total.lines():
        print(line)
    print(f"\nMachine at the end: {describe_machine()}")


if __name__ == "__main__":
    main()
