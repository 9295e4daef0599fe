"""The training loop: seeded batches, AMP on CUDA, early stopping, best weights.

The loop is deliberately as lean as a hand-written one (bench/train_throughput.py holds it to
>= 0.95x on the CPU, bench/train_gpu.py measures it on a GPU): whole data sets live in tensors
(on the GPU itself when they fit in a quarter of its free memory, else in pinned host memory),
batches are index gathers, and the loss is only synchronised with the host once per epoch.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from functions.runtime.metric_text import metric_name
from training.device import DeviceSetup, fits_on_device, seed_everything
from training.errors import TrainingError
from training.metrics import PRIMARY, improved, score
from training.prepare import PreparedData, Split
from training.progress import EpochProgress
from training.spec import JobSpec
from training.targets import weighed_classes_known

EVAL_BATCH = 4096


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_metric: float
    learning_rate: float
    seconds: float  # the whole epoch: training pass, validation, bookkeeping
    train_seconds: float  # the training pass alone (what bench/train_throughput.py compares)


@dataclass
class TrainResult:
    """The trained model (best weights, on the CPU, in eval mode) and how training went."""

    model: nn.Module
    history: list[EpochRecord]
    best_epoch: int
    monitor: str
    stopped_early: bool
    device: DeviceSetup
    checkpoint: Path | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    kept_because: str = ""  # why best_epoch's weights were kept (`BestWeights.why`)

    @property
    def seconds_per_epoch(self) -> float:
        return sum(r.seconds for r in self.history) / max(len(self.history), 1)


class _Step(NamedTuple):
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None


class BestWeights:
    """The epoch whose weights are kept, and a copy of them: the best on the monitored validation
    metric, a tie on it broken by the lower validation loss. Accuracy plateaus on separable or
    imbalanced data, or a small validation split, while the loss goes on improving: the first
    epoch of the plateau was kept (epoch 2 of 30). Early stopping's patience still counts from
    the last epoch the monitored metric itself improved, so a tie stops no later."""

    def __init__(self, monitor: str, min_delta: float) -> None:
        self.monitor, self.min_delta = monitor, min_delta
        self.value: float | None = None
        self.loss = math.inf
        self.epoch = 0
        self.improved_at = 0  # the last epoch the monitored metric improved (patience)
        self.tie_broken = False
        self.state: dict[str, torch.Tensor] = {}

    def update(self, record: EpochRecord, model: nn.Module) -> bool:
        """Keep `model`'s weights if `record` improves on the best; True when it did."""
        if improved(self.monitor, record.val_metric, self.value, self.min_delta):
            self.improved_at, self.tie_broken = record.epoch, False
        elif (
            self.monitor != "loss"
            and record.val_metric == self.value
            and record.val_loss < self.loss
        ):
            self.tie_broken = True
        else:
            return False
        self.value, self.loss, self.epoch = record.val_metric, record.val_loss, record.epoch
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return True

    @property
    def why(self) -> str:
        """Why the kept epoch was kept: `best val_accuracy`, `best val_accuracy, then val_loss`."""
        best = f"best val_{metric_name(self.monitor)}"
        return f"{best}, then val_loss" if self.tie_broken else best


class Trainer:
    """Fits one model to prepared data as the spec says."""

    def __init__(
        self,
        spec: JobSpec,
        data: PreparedData,
        device: DeviceSetup,
        *,
        progress: bool | None = None,
        checkpoint_dir: Path | None = None,
    ) -> None:
        self.spec, self.data, self.setup = spec, data, device
        self.progress = progress
        self.checkpoint = checkpoint_dir / "best.npz" if checkpoint_dir else None
        self.classes = len(data.labels)
        # Regression loss is MSE in units of the target's variance: scale-free, like R2.
        y = data.train.y.astype(np.float64)
        self.loss_scale = 1.0 if self.classes else 1.0 / max(float(y.var()), 1e-12)
        self.class_weights = class_weights(spec, data)
        stop = spec.early_stopping
        self.monitor = stop.monitor if stop else PRIMARY[spec.task]

    def fit(self, model: nn.Module) -> TrainResult:
        """Train for `spec.epochs` (or until early stopping) and restore the best weights."""
        generator = seed_everything(self.spec.seed)
        model = model.to(self.setup.device)
        x, y = self._tensors(self.data.train)
        optimizer = self._optimizer(model)
        step = _Step(
            optimizer,
            self._scheduler(optimizer, math.ceil(len(x) / self.spec.batch_size)),
            torch.amp.GradScaler("cuda") if self._scaled() else None,
        )
        history: list[EpochRecord] = []
        best = BestWeights(self.monitor, self._min_delta())
        with EpochProgress(self.spec.name, self.spec.epochs, self.progress) as progress:
            for epoch in range(1, self.spec.epochs + 1):
                record = self._epoch(
                    epoch, model, x, y, torch.randperm(len(x), generator=generator), step
                )
                history.append(record)
                progress.update(
                    epoch,
                    {
                        "loss": record.train_loss,
                        "val_loss": record.val_loss,
                        f"val_{metric_name(self.monitor)}": record.val_metric,
                    },
                )
                if best.update(record, model):
                    self._save_checkpoint(best.state)
                if (  # a tie kept for its lower loss is no improvement to patience
                    self.spec.early_stopping
                    and epoch - best.improved_at >= self.spec.early_stopping.patience
                ):
                    break
        model.load_state_dict(best.state)
        return TrainResult(
            model=model.to("cpu").eval(),
            history=history,
            best_epoch=best.epoch,
            monitor=self.monitor,
            kept_because=best.why,
            stopped_early=len(history) < self.spec.epochs,
            device=self.setup,
            checkpoint=self.checkpoint,
        )

    def _epoch(
        self,
        epoch: int,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        order: torch.Tensor,
        step: _Step,
    ) -> EpochRecord:
        started = time.perf_counter()
        rate = float(step.optimizer.param_groups[0]["lr"])  # the rate this epoch starts with
        train_loss = self._train_epoch(model, x, y, order, step)
        trained = time.perf_counter()
        val_loss, metrics = self.evaluate(model, self.data.validation)
        value = val_loss if self.monitor == "loss" else float(metrics[self.monitor])
        return EpochRecord(
            epoch,
            train_loss,
            val_loss,
            value,
            rate,
            time.perf_counter() - started,
            trained - started,
        )

    def _train_epoch(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        order: torch.Tensor,
        step: _Step,
    ) -> float:
        """One pass over the training rows in `order`; returns the mean training loss."""
        model.train()
        optimizer, scheduler, scaler = step
        losses: list[torch.Tensor] = []  # a list append per step, not tensor arithmetic
        batches = torch.split(order.to(x.device, non_blocking=True), self.spec.batch_size)
        for batch in batches:
            xb, yb = self._batch(x, batch), self._batch(y, batch)
            with self._autocast():
                loss = self._loss(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
            else:
                scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
                scaler.step(optimizer)
                scaler.update()
            if scheduler is not None:
                scheduler.step()
            losses.append(loss.detach())
        sizes = torch.tensor(
            [len(b) for b in batches], dtype=torch.float32, device=self.setup.device
        )
        weighted = (torch.stack(losses).float() * sizes).sum()
        mean = float(weighted) / len(x)  # the one host sync per epoch
        if not math.isfinite(mean):
            raise TrainingError(
                f"{self.spec.name}: the training loss became {mean}; lower learning_rate "
                f"(now {self.spec.learning_rate:g}) or check the data's scale"
            )
        return mean

    def _min_delta(self) -> float:
        return self.spec.early_stopping.min_delta if self.spec.early_stopping else 0.0

    def _tensors(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = torch.from_numpy(split.x), torch.from_numpy(split.y)
        if self.setup.device.type == "cpu":
            return x, y
        if fits_on_device(x.nbytes + y.nbytes, self.setup.device):
            # One copy for the whole job: a batch is then a gather on the GPU, with no host work
            # per step (measured against per-batch pinned copies: bench/train_gpu.py).
            return x.to(self.setup.device), y.to(self.setup.device)
        if self.setup.pin_memory:
            return x.pin_memory(), y.pin_memory()
        return x, y

    def _batch(self, tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        rows = tensor[index]
        if rows.device.type == self.setup.device.type:
            return rows
        # Gathered host rows are not pinned; pin them so the copy overlaps with compute.
        return rows.pin_memory().to(self.setup.device, non_blocking=True)

    def _scaled(self) -> bool:
        """float16 needs its loss scaled (a GradScaler, one host sync a step); bfloat16 not."""
        return self.setup.amp and self.setup.amp_dtype == torch.float16

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.setup.amp:
            return torch.autocast("cuda", dtype=self.setup.amp_dtype)
        return contextlib.nullcontext()

    def _loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.classes:
            weights = self.class_weights
            if weights is not None and weights.device != outputs.device:
                weights = self.class_weights = weights.to(outputs.device)
            return nn.functional.cross_entropy(outputs.float(), target, weight=weights)
        return nn.functional.mse_loss(outputs.float(), target) * self.loss_scale

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        spec = self.spec
        kinds: dict[str, Any] = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
        if spec.optimizer == "sgd":
            return torch.optim.SGD(
                model.parameters(),
                lr=spec.learning_rate,
                momentum=0.9,
                weight_decay=spec.weight_decay,
            )
        optimizer: torch.optim.Optimizer = kinds[spec.optimizer](
            model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay
        )
        return optimizer

    def _scheduler(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
        schedule, total = self.spec.schedule, steps_per_epoch * self.spec.epochs
        if schedule.name == "constant":
            return None  # no per-step call at all: the cheapest schedule is none
        if schedule.name == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, self.spec.learning_rate, total_steps=total
            )
        if schedule.name == "cosine":
            return torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0)))
            )
        every = schedule.step_size * steps_per_epoch
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: schedule.gamma ** (s // every)
        )

    def predict(self, model: nn.Module, x: np.ndarray) -> np.ndarray:
        """Model outputs for `x` as float32 numpy, in eval mode, batched."""
        model.eval()
        device = next(model.parameters()).device
        outputs = []
        with (
            torch.inference_mode(),
            self._autocast() if device.type == "cuda" else contextlib.nullcontext(),
        ):
            for start in range(0, len(x), EVAL_BATCH):
                batch = torch.from_numpy(x[start : start + EVAL_BATCH]).to(device)
                outputs.append(model(batch).float().cpu().numpy())
        return np.concatenate(outputs)

    def evaluate(self, model: nn.Module, split: Split) -> tuple[float, dict[str, Any]]:
        """Loss and metrics of `model` on `split`."""
        outputs = self.predict(model, split.x)
        with torch.no_grad():
            loss = float(self._loss(torch.from_numpy(outputs), torch.from_numpy(split.y)))
        return loss, score(self.spec.task, split.y, outputs, self.classes)

    def _save_checkpoint(self, state: dict[str, torch.Tensor]) -> None:
        # npz, not torch.save: no pickle, and numpy can read it back anywhere.
        if self.checkpoint is not None:
            self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            arrays: dict[str, Any] = {
                k: v.detach().float().cpu().numpy()
                for k, v in state.items()
                if v.is_floating_point()
            }
            np.savez(self.checkpoint, **arrays)


def load_checkpoint(model: nn.Module, path: Path) -> nn.Module:
    """Load float weights saved by the trainer's best-weights checkpoint into `model`."""
    with np.load(path, allow_pickle=False) as data:
        state = {k: torch.from_numpy(data[k]) for k in data.files}
    model.load_state_dict(state, strict=False)
    return model


def class_weights(spec: JobSpec, data: PreparedData) -> torch.Tensor | None:
    """The cross-entropy weight of each class as `spec.class_weight` asks; None: all alike.

    The validation loss (early stopping's "loss") is weighted alike: it tracks what is fitted.
    """
    wanted, labels = spec.class_weight, data.labels
    if wanted is None or not labels:
        return None
    if wanted == "balanced":
        counts = np.bincount(data.train.y, minlength=len(labels)).astype(np.float64)
        # What scikit-learn's class_weight="balanced" gives; a class the split lacks weighs 1.
        weights = np.divide(
            len(data.train.y), len(labels) * counts, out=np.ones(len(labels)), where=counts > 0
        )
    elif isinstance(wanted, dict):
        weighed_classes_known(wanted, labels)
        weights = np.array([wanted.get(label, 1.0) for label in labels])
    else:
        raise TrainingError(f"spec field 'class_weight': unknown value {wanted!r}")
    return torch.tensor(weights, dtype=torch.float32)
