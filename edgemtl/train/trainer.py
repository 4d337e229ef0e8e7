"""The trainer: AdamW with warm-up and cosine decay, per-task losses and metrics, atomic checkpoints."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgemtl import jsonfile
from edgemtl.data import ArrayDataset, AugmentConfig, augment_batch
from edgemtl.features import FeatureSpec
from edgemtl.model import build_model, fit_value_heads, input_preprocess
from edgemtl.runtime.stop_signals import StopSignals
from edgemtl.tasks import TaskSpec, validate_tasks
from edgemtl.train import distributed
from edgemtl.train.checkpoint import (
    Checkpoint,
    load_resumable,
    restore_training,
    save_checkpoint,
    training_state,
)
from edgemtl.train.config import RunConfig, TrainConfig, save_config
from edgemtl.train.device import resolve_device, seed_everything
from edgemtl.train.inputs import check_data, run_features
from edgemtl.train.losses import (
    as_tensors,
    class_counts,
    labelled_count,
    loss_lines,
    rare_lines,
    resolve_class_weights,
    task_loss,
    with_losses_written_out,
)
from edgemtl.train.plots import plot_run
from edgemtl.train.resuming import check_resume, check_world_size
from edgemtl.train.schedule import parameter_groups, warmup_cosine
from edgemtl.train.validate import format_metrics, labelled_mean, selection_score, validate_model
from edgemtl.train.weighting import create_weighting


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_metrics: dict[str, dict[str, float]]
    history: list[dict] = field(default_factory=list)


def _batches(
    count: int,
    batch_size: int,
    generator: torch.Generator | None,
    context: distributed.Distributed = distributed.SINGLE_PROCESS,
) -> Iterator[torch.Tensor]:
    """Index batches; shuffled and without a ragged last batch when a generator is given (training).

    Under torchrun each rank batches its own disjoint shard of the shared shuffled order
    (`distributed.shard`): what DistributedSampler does for a DataLoader, done directly on the indices
    because the data are in-memory arrays.
    """
    if generator is None:
        order = torch.arange(count)
        stop = count
    else:
        order = distributed.shard(torch.randperm(count, generator=generator), context)
        stop = max(len(order) - len(order) % batch_size, min(len(order), batch_size))
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def _training_batch(
    data: ArrayDataset,
    tasks: tuple[TaskSpec, ...],
    index: torch.Tensor,
    augment: AugmentConfig,
    rng: np.random.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One training batch on the device, augmented on the CPU first (a disabled config returns it as is)."""
    picked = index.numpy()
    batch = {t.name: data.targets[t.name][picked] for t in tasks}
    images, targets = augment_batch(data.inputs[picked], batch, tasks, augment, rng)
    return torch.from_numpy(images).to(device, non_blocking=True), {
        name: torch.from_numpy(target).to(device, non_blocking=True) for name, target in targets.items()
    }


class _Training:
    """The machinery of one run, built in a fixed order (random streams depend on it): the model and its
    DDP wrapper, preprocessing, task weighting, optimizer, schedule and gradient scaler."""

    validation: dict | None = None  # which frames validate the run (ArrayDataset.frames_record), for export

    def __init__(
        self,
        run_config: RunConfig,
        steps_per_epoch: int,
        context: distributed.Distributed,
        device: torch.device,
        resumed: Checkpoint | None,
        features: FeatureSpec | None,
        train_targets: dict[str, np.ndarray] | None,
        class_weights: dict[str, np.ndarray],
    ) -> None:
        config, tasks = run_config.train, run_config.tasks
        self.class_weights = as_tensors(class_weights, device)  # per task, as its loss takes them
        self.run_config, self.config, self.tasks = run_config, config, tasks
        self.context, self.device, self.steps_per_epoch = context, device, steps_per_epoch
        self.features = features  # a vector run's feature names and training-split statistics
        self.generator = seed_everything(config.seed)
        fresh = resumed is None  # a resumed run's weights come from its checkpoint, not the hub or a file
        model = build_model(
            config.preset,
            tasks,
            skips=config.skips,
            features=features,
            encoder=config.encoder,
            pretrained=config.pretrained and fresh,
            weights=config.weights if fresh else None,
        )
        if resumed is not None:
            model.load_state_dict(resumed.model_state)
        elif features is not None:
            fit_value_heads(model, train_targets)  # value heads start at the targets' mean and spread
        if config.freeze_encoder:
            model.freeze_encoder()
        self.model = model.to(device, memory_format=torch.channels_last)
        self.net = distributed.wrap(self.model, context, device)  # steps go through DDP; checkpoints use model
        self.preprocess = input_preprocess(config.mean, config.std, features).to(device)
        self.weighting = create_weighting(config.weighting, tasks).to(device)
        self.shared = self.weighting.shared_parameters(self.model)  # what the method reads gradients on
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, self.weighting, config),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        self.scheduler = warmup_cosine(self.optimizer, config.epochs * steps_per_epoch, config.warmup_fraction)
        self.use_amp = config.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)

    def step(self, frames: torch.Tensor, targets: dict[str, torch.Tensor]) -> tuple[dict, dict]:
        """One optimizer step; the per-task losses and their weighted values."""
        with torch.autocast(self.device.type, enabled=self.use_amp):
            outputs = self.net(self.preprocess(frames))
            losses = {
                t.name: task_loss(t, outputs[t.name].float(), targets[t.name], self.class_weights.get(t.name))
                for t in self.tasks
            }
        self.optimizer.zero_grad(set_to_none=True)
        weighted = self.weighting.backward(losses, self.shared, self.scaler)  # each method's own work
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return losses, weighted

    def epoch(
        self, epoch: int, data: ArrayDataset, progress: bool, stopping: StopSignals | None = None
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Train one epoch (left between batches once `stopping` is asked); each task's mean loss and mean
        weighted loss over its labelled items, all ranks."""
        self.net.train()
        loss_sums = dict.fromkeys((t.name for t in self.tasks), 0.0)
        weighted_sums = dict.fromkeys(loss_sums, 0.0)
        # Labelled items per task, as task_loss counts them: images, pixels for segmentation, entries for
        # multilabel and regression; a batch's mean weighted by them gives the epoch's mean over its labels.
        labelled = dict.fromkeys(loss_sums, 0.0)
        batches = tqdm(
            _batches(len(data), self.config.batch_size, self.generator, self.context),
            total=self.steps_per_epoch,
            desc=f"epoch {epoch}/{self.config.epochs}",
            disable=None if progress else True,  # None: only when writing to a terminal
            leave=False,
            unit="batch",
        )
        # Seeded per epoch and rank, so a resumed run draws the same augmentations with no state to save.
        augment_rng = np.random.default_rng([self.config.seed, epoch, self.context.rank])
        for index in batches:
            if stopping is not None and stopping.requested:
                break
            augment = self.run_config.augment
            frames, targets = _training_batch(data, self.tasks, index, augment, augment_rng, self.device)
            losses, weighted = self.step(frames, targets)
            for task in self.tasks:  # a batch without a label for the task adds 0 to both sum and count
                count = labelled_count(task, targets[task.name])
                labelled[task.name] += count
                loss_sums[task.name] += losses[task.name].item() * count
                weighted_sums[task.name] += weighted[task.name].item() * count
            batches.set_postfix(loss=f"{sum(weighted.values()).item():.3f}")
        # Sums and counts are averaged across ranks alike, so their ratio is the mean over all ranks' labels.
        loss_sums, weighted_sums, labelled = (
            distributed.mean_across_ranks(sums, self.context) for sums in (loss_sums, weighted_sums, labelled)
        )
        distributed.average_buffers(self.model, self.context)
        return (
            {name: labelled_mean(total, labelled[name]) for name, total in loss_sums.items()},
            {name: labelled_mean(total, labelled[name]) for name, total in weighted_sums.items()},
        )

    def history_entry(self, epoch: int, losses: dict, weighted: dict, val_data: ArrayDataset) -> dict:
        """Validate (rank 0; the other ranks receive its metrics), then let the weighting see the epoch's
        losses: the epoch's line of metrics.jsonl."""
        on_main = self.context.is_main
        metrics = validate_model(self.model, val_data, self.preprocess) if on_main else None
        metrics = distributed.from_main(metrics, self.context)
        task_weights = self.weighting.current_weights()  # the weights this epoch trained with (DWA's change below)
        self.weighting.end_epoch(losses)
        return {
            "epoch": epoch,
            "lr": self.scheduler.get_last_lr()[0],
            "train_loss": losses,
            "weighted_loss": weighted,
            "task_weights": task_weights,
            "val": metrics,
        }

    def checkpoint(self, epoch: int, metrics: dict[str, dict[str, float]]) -> Checkpoint:
        config = self.config
        return Checkpoint(
            preset=config.preset,
            encoder=config.encoder,
            resize=config.resize,
            tasks=self.tasks,
            input_size=config.resolved_input_size() if self.features is None else (1, self.features.count),
            mean=tuple(config.mean),
            std=tuple(config.std),
            model_state={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            skips=config.skips,
            epoch=epoch,
            metrics=metrics,
            config=self.run_config.to_dict(),
            validation=self.validation,
            features=self.features,
            class_weights={name: weights.tolist() for name, weights in self.class_weights.items()},
        )

    def save(
        self, run_dir: Path, epoch: int, metrics: dict, improved: bool, best: tuple[float, dict], history: list
    ) -> None:
        """best.pt when the epoch improved (lean: what export needs), last.pt with everything to resume."""
        state = self.checkpoint(epoch, metrics)
        if improved:
            save_checkpoint(state, run_dir / "best.pt")
        state.training = training_state(
            self.optimizer,
            self.scheduler,
            self.scaler,
            self.weighting,
            self.generator,
            best[0],
            best[1],
            history,
            self.context.world_size,
        )
        save_checkpoint(state, run_dir / "last.pt")


def _epoch_line(run: _Training, entry: dict) -> str:
    weights, weighted = entry["task_weights"], entry["weighted_loss"]
    losses_text = ", ".join(
        f"{name} {value:.3f} (weight {weights[name]:.3f}, weighted {weighted[name]:.3f})"
        for name, value in entry["train_loss"].items()
    )
    metrics = format_metrics(entry["val"], run.tasks)
    return f"epoch {entry['epoch']:>3}/{run.config.epochs}  loss {losses_text}  val {metrics}"


def _start_files(run: _Training, resumed: Checkpoint | None, run_dir: Path) -> tuple[float, dict, list[dict]]:
    """The best score, its metrics and the history so far (restored on resume), and the run folder's
    config.json and metrics.jsonl written to match them."""
    best_score, best_metrics, history = -math.inf, {}, []
    if resumed is not None:
        best_score, best_metrics, history = restore_training(
            resumed.training, run.optimizer, run.scheduler, run.scaler, run.weighting, run.generator
        )
    if run.context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(run.run_config, run_dir / "config.json")
        # The epochs last.pt holds; on resume this drops only lines of an epoch cut off before its checkpoint.
        (run_dir / "metrics.jsonl").write_text("".join(jsonfile.dumps(entry) + "\n" for entry in history))
    return best_score, best_metrics, history


def train(
    config: TrainConfig,
    tasks: tuple[TaskSpec, ...],
    train_data: ArrayDataset,
    val_data: ArrayDataset,
    run_dir: Path,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
    resume: bool = False,
    settings: RunConfig | None = None,
) -> TrainResult:
    """Train a model; write last.pt every epoch, best.pt when the selection score improves.

    `resume=True` continues the run in `run_dir` from its last.pt: model, optimizer, scheduler, grad
    scaler, task weighting, random streams, epoch, best score and history come back, so the run ends as
    it would have uninterrupted. Its configuration and process count must be the ones the run started
    with; more epochs are allowed, but they stretch the cosine schedule, so only an unchanged epoch count
    gives the identical run. `settings` holds the rest of the run's configuration (data source, augmentation),
    recorded with `config` and `tasks` in config.json and the checkpoints so the CLI can resume it.

    Under torchrun the same function runs in every process (see `edgemtl.train.distributed`):
    DistributedDataParallel wraps the model, each rank trains on its shard of every epoch, and rank 0
    alone validates, on the full validation set so the metrics equal a single-process evaluation (the
    other ranks receive them), and writes files and logs.

    (Over 60 lines with this docstring: the checks before any work, then the epoch loop, kept in one
    place so the order of what a resumed run restores and writes can be read at a glance.)
    """
    tasks = validate_tasks(tasks)
    features = run_features(config, train_data, val_data)  # None for images
    input_size = None
    if features is None:
        input_size = config.resolved_input_size()
        config.check_model()
    check_data({"training": train_data, "validation": val_data}, tasks, input_size)
    run_dir = Path(run_dir)
    resumed = load_resumable(run_dir / "last.pt") if resume else None
    named, tasks = tasks, with_losses_written_out(tasks, resumed.config if resumed else None)  # recorded as used
    run_config = replace(settings or RunConfig(data=None), train=config, tasks=tasks)
    if resumed is not None:
        check_resume(resumed, run_dir, run_config)
    context, device = distributed.setup(resolve_device(config.device))
    check_world_size(resumed, context, run_dir)
    if not context.is_main:
        progress, log = False, lambda _: None
    steps_per_epoch = max(1, len(train_data) // context.world_size // config.batch_size)
    counts = class_counts(tasks, train_data)  # one bounded pass over the training targets
    class_weights = resolve_class_weights(tasks, counts)
    run = _Training(run_config, steps_per_epoch, context, device, resumed, features, train_data.targets, class_weights)
    run.validation = val_data.frames_record()

    best_score, best_metrics, history = _start_files(run, resumed, run_dir)
    start_epoch = resumed.epoch + 1 if resumed is not None else 1
    log(
        (f"resuming {run_dir} at epoch {start_epoch}: " if resumed is not None else "")
        + f"training {config.preset} on {len(train_data)} frames ({len(val_data)} for validation), device {device}"
        + (f", {context.world_size} processes" if context.world_size > 1 else "")
        + f"; weighting {config.weighting}; "
        + "; ".join(loss_lines(tasks, class_weights))
    )
    for line in rare_lines(named, counts, class_weights):  # what was named, or the default
        log(line)
    # Signals stop the run between batches, not inside an import or a save (one in a C extension's import
    # crashed Python as it exited), then go on. Several processes must stop together: there, at once.
    with StopSignals() if context.world_size == 1 else contextlib.nullcontext() as stopping:
        for epoch in range(start_epoch, config.epochs + 1):
            train_losses, weighted_losses = run.epoch(epoch, train_data, progress, stopping)
            if stopping is not None and stopping.requested:
                break  # the epoch was cut short: neither scored nor saved
            entry = run.history_entry(epoch, train_losses, weighted_losses, val_data)
            metrics = entry["val"]
            history.append(entry)
            score = selection_score(metrics, tasks)
            improved = score > best_score or not best_metrics  # epoch 1 always writes best.pt, even if NaN
            if improved:
                best_score, best_metrics = score, metrics
            if context.is_main:  # metrics.jsonl after the checkpoint: a full disk leaves both at the last epoch
                run.save(run_dir, epoch, metrics, improved, (best_score, best_metrics), history)
                with (run_dir / "metrics.jsonl").open("a") as file:
                    file.write(jsonfile.dumps(entry) + "\n")
                if config.plots:  # after the checkpoint: a slow or failing plot never costs an epoch
                    plot_run(run_dir, history, run.model, run.preprocess, val_data)
            log(_epoch_line(run, entry) + ("  (best)" if improved else ""))
    distributed.teardown(context)
    return TrainResult(run_dir, run_dir / "best.pt", run_dir / "last.pt", best_metrics, history)
