"""The trainer: runs a spec's training settings on a model, within a budget, reporting progress.

Data lives on the device for the whole run (images as uint8) and is shuffled, augmented and
normalised there in whole batches. On CUDA it trains under bf16 autocast with channels_last.
"""

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from runtime.augment import BatchPreparer
from runtime.progress import Eta, ProgressPoint

# Progress goes out at most this often (plus every epoch end and the final point).
PROGRESS_INTERVAL_S = 0.25


@dataclass(frozen=True)
class ComputeBudget:
    """Limits from the exercise; None means no limit of that kind."""

    max_seconds: float | None = None
    max_epochs: int | None = None


@dataclass
class TrainOutcome:
    status: str  # "completed" | "cancelled" | "timed_out" | "diverged"
    epochs_completed: int
    steps: int
    seconds: float
    diagnosis: str | None = None
    history: list[dict] = field(default_factory=list)  # the epoch-end progress points

    def as_dict(self) -> dict:
        return asdict(self)


def choose_device(preferred: str | torch.device | None = None) -> torch.device:
    if preferred is not None:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a model with its initial weights drawn from `seed`, leaving the global RNG as it was.

    Reproducible runs need the initialisation seeded too, not only the shuffling.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_optimizer(spec, parameters) -> torch.optim.Optimizer:
    # fused=True: one kernel updates every parameter (CPU and CUDA), instead of a loop of ops.
    if spec.type == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=spec.lr,
            momentum=spec.momentum,
            nesterov=spec.nesterov,
            weight_decay=spec.weight_decay,
            fused=True,
        )
    if spec.type == "adam":
        return torch.optim.Adam(
            parameters, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay, fused=True
        )
    if spec.type == "adamw":
        return torch.optim.AdamW(
            parameters, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay, fused=True
        )
    if spec.type == "rmsprop":
        return torch.optim.RMSprop(
            parameters, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
        )
    raise ValueError(f"unknown optimizer {spec.type!r}")


class _Schedule:
    """Wraps torch's schedulers so the loop calls one method per step and one per epoch."""

    def __init__(self, spec, optimizer, *, steps_per_epoch: int, epochs: int):
        self.per_step = self.per_epoch = None
        total_steps = max(1, steps_per_epoch * epochs)
        if spec.type == "step":
            self.per_epoch = torch.optim.lr_scheduler.StepLR(
                optimizer, step_size=spec.step_size, gamma=spec.gamma
            )
        elif spec.type == "cosine":
            self.per_step = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps)
        elif spec.type == "one_cycle":
            max_lr = spec.max_lr or 10 * optimizer.param_groups[0]["lr"]
            self.per_step = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=max_lr, total_steps=total_steps
            )
        elif spec.type != "constant":
            raise ValueError(f"unknown schedule {spec.type!r}")

    def step(self) -> None:
        if self.per_step is not None:
            self.per_step.step()

    def epoch(self) -> None:
        if self.per_epoch is not None:
            self.per_epoch.step()


def loss_name(training, info) -> str:
    if training.loss:
        return training.loss
    return "binary_cross_entropy" if info.task == "binary" else "cross_entropy"


def logits_model(model: nn.Module) -> nn.Module:
    """The model without a final Sigmoid: binary losses and predictions work on logits."""
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[-1], nn.Sigmoid):
        return model[:-1]
    return model


def _loss(name: str, outputs: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    outputs = outputs.float()  # losses in fp32 even under autocast
    if name == "cross_entropy":
        return F.cross_entropy(outputs, y)
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(outputs.reshape(-1), y.float())
    if name == "mse":
        if outputs.shape[-1] == 1:
            return F.mse_loss(torch.sigmoid(outputs.reshape(-1)), y.float())
        return F.mse_loss(outputs, F.one_hot(y, num_classes).float())
    raise ValueError(f"unknown loss {name!r}")


def _predicted(outputs: torch.Tensor) -> torch.Tensor:
    """Class indices from logits: one output is a binary logit, several are class scores."""
    if outputs.shape[-1] == 1:
        return (outputs.reshape(-1) > 0).long()
    return outputs.argmax(dim=-1)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class _Running:
    """A running mean of loss and accuracy (on a GPU kept on the device: no sync per step)."""

    def __init__(self):
        self.loss_sum = self.correct = None
        self.seen = 0

    def add(self, weighted_loss, correct, batch: int) -> None:
        self.loss_sum = weighted_loss if self.loss_sum is None else self.loss_sum + weighted_loss
        self.correct = correct if self.correct is None else self.correct + correct
        self.seen += batch

    def means(self) -> tuple[float | None, float | None]:
        if not self.seen:
            return None, None
        return float(self.loss_sum) / self.seen, float(self.correct) / self.seen


class _Progress:
    """Emits progress points (runtime.progress): during an epoch the means since the
    last point (throttled), at its end the whole epoch's means and the validation loss and
    accuracy, so the epoch history does not depend on timing."""

    def __init__(
        self, callback, *, total_steps: int, epochs: int, started: float, deadline: float = math.inf
    ):
        self.callback = callback
        self.total_steps = total_steps
        self.epochs = epochs
        self.started = started
        self.last_emit = started
        self.eta = Eta(total_steps=total_steps, started=started, deadline=deadline)
        self.window = _Running()
        self.epoch = _Running()

    def add(self, loss, correct, batch: int) -> None:
        """`loss` and `correct`: Python numbers on the CPU, tensors on a GPU (no sync)."""
        weighted = loss * batch
        self.window.add(weighted, correct, batch)
        self.epoch.add(weighted, correct, batch)

    def due(self, step: int, now: float) -> bool:
        """Called after every step: times the step for the ETA, and says whether a point is
        due."""
        self.eta.step(step, now)
        return now - self.last_emit >= PROGRESS_INTERVAL_S

    def point(
        self,
        *,
        epoch: int,
        step: int,
        lr: float,
        samples: int,
        now: float,
        val=None,
        epoch_end: bool = False,
    ) -> dict:
        running = self.epoch if epoch_end else self.window
        mean_loss, accuracy = running.means()
        val_loss, val_accuracy = val if val is not None else (None, None)
        elapsed = now - self.started
        rate = samples / elapsed if elapsed > 0 else None
        # from_untrusted: a non-finite mean (a loss diverging between the GPU path's checks)
        # becomes null instead of failing the point.
        point = ProgressPoint.from_untrusted(
            {
                "epoch": epoch,
                "epochs": self.epochs,
                "step": step,
                "steps": self.total_steps,
                "epoch_end": epoch_end,
                "loss": mean_loss,
                "train_accuracy": accuracy,
                "val_accuracy": val_accuracy,
                "val_loss": val_loss,
                "lr": lr,
                "samples_per_second": rate,
                "elapsed": elapsed,
                "eta": self.eta.seconds_left(step, now),
            }
        ).as_payload()
        self.window = _Running()
        if epoch_end:
            self.epoch = _Running()
        self.last_emit = now
        if self.callback is not None:
            self.callback(point)
        return point


def _divergence_diagnosis(step: int, epoch: int, lr: float) -> str:
    return (
        f"The loss became NaN or infinite at step {step} (epoch {epoch}), so training stopped. "
        f"This usually means the learning rate ({lr:g}) is too high for this model: try one ten "
        "times smaller, or add normalisation layers."
    )


def train(
    model: nn.Module,
    *,
    training,
    train,
    val,
    info,
    device: torch.device | str | None = None,
    budget: ComputeBudget = ComputeBudget(),
    progress: Callable[[dict], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> TrainOutcome:
    """Train `model` on `train`, measure on `val` at each epoch end. The test split never
    comes here. `should_cancel` is called every step and must be cheap."""
    device = choose_device(device)
    torch.manual_seed(training.seed)
    generator = torch.Generator(device=device).manual_seed(training.seed)
    image = info.kind == "image"
    model.to(device)
    if image:  # convolutions run faster on NHWC (channels_last), on CUDA and on the CPU alike
        model.to(memory_format=torch.channels_last)
    forward = logits_model(model)
    loss = loss_name(training, info)
    optimizer = optimizer or build_optimizer(training.optimizer, model.parameters())
    prepare = BatchPreparer(
        kind=info.kind, augment=training.augment, device=device, generator=generator
    )
    x_train, y_train = train.x.to(device), train.y.to(device)
    source = prepare.source(x_train)
    count = x_train.shape[0]
    batch = min(training.batch_size, count)
    steps_per_epoch = math.ceil(count / batch)
    epochs = min(training.epochs, budget.max_epochs or training.epochs)
    schedule = _Schedule(
        training.schedule, optimizer, steps_per_epoch=steps_per_epoch, epochs=epochs
    )
    started = time.monotonic()
    deadline = started + budget.max_seconds if budget.max_seconds else math.inf
    tracker = _Progress(
        progress,
        total_steps=steps_per_epoch * epochs,
        epochs=epochs,
        started=started,
        deadline=deadline,
    )
    outcome = TrainOutcome(status="completed", epochs_completed=0, steps=0, seconds=0.0)
    on_cpu = device.type == "cpu"

    def finish(status: str, diagnosis: str | None = None) -> TrainOutcome:
        outcome.status, outcome.diagnosis = status, diagnosis
        outcome.seconds = time.monotonic() - started
        return outcome

    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(count, generator=generator, device=device)
        x_epoch, y_epoch = prepare.epoch(source, order), y_train[order]
        for start in range(0, count, batch):
            if should_cancel is not None and should_cancel():
                return finish("cancelled")
            if time.monotonic() > deadline:
                return finish("timed_out")
            xb = prepare.batch(x_epoch[start : start + batch])
            yb = y_epoch[start : start + batch]
            with _autocast(device):
                outputs = forward(xb)
            step_loss = _loss(loss, outputs, yb, info.num_classes)
            optimizer.zero_grad(set_to_none=True)
            step_loss.backward()
            optimizer.step()
            schedule.step()
            outcome.steps += 1
            lr = optimizer.param_groups[0]["lr"]
            correct = (_predicted(outputs.detach()) == yb).sum()
            if on_cpu:
                # One read of the loss serves the divergence check and the running means.
                loss_value = step_loss.item()
                tracker.add(loss_value, int(correct), yb.shape[0])
                if not math.isfinite(loss_value):
                    return finish("diverged", _divergence_diagnosis(outcome.steps, epoch, lr))
            else:
                # On a GPU, stay asynchronous: accumulate on the device, check every 16 steps.
                tracker.add(step_loss.detach(), correct, yb.shape[0])
                if outcome.steps % 16 == 0 and not torch.isfinite(step_loss):
                    return finish("diverged", _divergence_diagnosis(outcome.steps, epoch, lr))
            now = time.monotonic()
            if tracker.due(outcome.steps, now) and start + batch < count:
                tracker.point(
                    epoch=epoch, step=outcome.steps, lr=lr, samples=outcome.steps * batch, now=now
                )
        if not torch.isfinite(step_loss):
            return finish("diverged", _divergence_diagnosis(outcome.steps, epoch, lr))
        schedule.epoch()
        measured = validation(model, val, info=info, training=training, device=device, loss=loss)
        model.train()
        outcome.epochs_completed = epoch
        point = tracker.point(
            epoch=epoch,
            step=outcome.steps,
            lr=lr,
            samples=outcome.steps * batch,
            now=time.monotonic(),
            val=measured,
            epoch_end=True,
        )
        outcome.history.append(point)
    return finish("completed")


@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, *, info, training=None, device=None, batch_size=1024
) -> torch.Tensor:
    """Class indices for `x` (int64 [N]), in evaluation mode, normalised as in training."""
    device = choose_device(device)
    model.eval()
    forward = logits_model(model)
    prepare = BatchPreparer.for_inference(info=info, training=training, device=device)
    predictions = []
    for start in range(0, x.shape[0], batch_size):
        xb = prepare.batch(x[start : start + batch_size].to(device))
        with _autocast(device):
            predictions.append(_predicted(forward(xb).float()))
    return torch.cat(predictions).cpu() if predictions else torch.empty(0, dtype=torch.long)


@torch.no_grad()
def validation(
    model: nn.Module, split, *, info, training, device, loss: str, batch_size=1024
) -> tuple[float, float] | None:
    """(mean loss, accuracy) of `model` on `split` in evaluation mode, as `predict` sees it;
    None for an empty split."""
    count = split.x.shape[0]
    if count == 0:
        return None
    device = choose_device(device)
    model.eval()
    forward = logits_model(model)
    prepare = BatchPreparer.for_inference(info=info, training=training, device=device)
    loss_sum = correct = 0.0
    for start in range(0, count, batch_size):
        xb = prepare.batch(split.x[start : start + batch_size].to(device))
        yb = split.y[start : start + batch_size].to(device)
        with _autocast(device):
            outputs = forward(xb).float()
        loss_sum += float(_loss(loss, outputs, yb, info.num_classes)) * yb.shape[0]
        correct += float((_predicted(outputs) == yb).sum())
    return loss_sum / count, correct / count
