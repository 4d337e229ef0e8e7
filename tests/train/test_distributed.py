"""Two CPU processes under torchrun (gloo): the same trainer, DistributedDataParallel, one set of files."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from edgemtl.train import load_checkpoint

# Runs in each torchrun process. It captures the model the trainer builds (by wrapping build_model) so
# the test can compare what every rank ended with; only the trainer writes into the run folder.
SCRIPT = """
import os, sys
from pathlib import Path

import torch

import edgemtl.train.trainer as trainer
from edgemtl.data.synthetic import make_dataset
from edgemtl.tasks import NAVIGATION_TASKS

models = []
build = trainer.build_model
trainer.build_model = lambda *args, **kwargs: models.append(build(*args, **kwargs)) or models[-1]
out = Path(sys.argv[1])
data = make_dataset(40, (32, 32), seed=0)
config = trainer.TrainConfig(input_size=(32, 32), epochs=2, batch_size=4, device="cpu", seed=1, plots=False)
trainer.train(config, NAVIGATION_TASKS, data.subset(slice(0, 32)), data.subset(slice(32, 40)), out / "run",
              progress=False)
torch.save(models[0].state_dict(), out / f"model_rank{os.environ['RANK']}.pt")
"""


@pytest.mark.slow
def test_two_processes_train_one_model_and_write_one_run(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    script = tmp_path / "train_ddp.py"
    script.write_text(textwrap.dedent(SCRIPT))
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # two processes on a 2-core CI runner
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("epoch   2/2") == 1, result.stdout  # rank 0 alone logs
    assert "2 processes" in result.stdout

    run = tmp_path / "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_rank0.pt", "model_rank1.pt", "run", "train_ddp.py"]
    assert {"best.pt", "config.json", "last.pt", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    assert not list(run.glob(".*"))  # no temporary files left by a second writer
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    ranks = [torch.load(tmp_path / f"model_rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    saved = load_checkpoint(run / "last.pt").model_state
    assert all(torch.equal(ranks[0][key], ranks[1][key]) for key in ranks[0])
    assert all(torch.equal(ranks[0][key], saved[key]) for key in saved)
    assert load_checkpoint(run / "last.pt").training["scheduler"]["last_epoch"] == 2 * 4  # 32 / 2 ranks / 4
