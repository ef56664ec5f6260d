"""The training settings of a spec: their fields, and the rules that tie them together."""

from .document import TrainingSpec
from .fields import Bool, Choice, Int, Num, Nums, Section
from .limits import MAX_BATCH, MAX_EPOCHS, MAX_KERNEL, MAX_LR, MAX_SEED
from .words import all_of, count, number, plural

OPTIMIZER = Section(
    "How the weights are updated.",
    "optimizer",
    {
        "type": Choice("the update rule", ("sgd", "adam", "adamw", "rmsprop")),
        "lr": Num("learning rate", 0, MAX_LR, lo_open=True),
        "momentum": Num("momentum (sgd, rmsprop)", 0, 1, hi_open=True, default=0.0),
        "nesterov": Bool("Nesterov momentum (sgd; needs momentum above 0)", default=False),
        "weight_decay": Num("L2 penalty on the weights", 0, 1, default=0.0),
        "betas": Nums(
            "running-average factors of the gradient and its square (adam, adamw)",
            0,
            1,
            hi_open=True,
            min_len=2,
            max_len=2,
            default=(0.9, 0.999),
        ),
    },
)

SCHEDULE = Section(
    "How the learning rate changes during training.",
    "schedule",
    {
        "type": Choice(
            "constant; step: times gamma every step_size epochs; cosine: down to 0 over the "
            "epochs; one_cycle: up to max_lr and back down",
            ("constant", "step", "cosine", "one_cycle"),
            default="constant",
        ),
        "step_size": Int("step: epochs between decays", 1, MAX_EPOCHS, default=1),
        "gamma": Num("step: factor applied at each decay", 0, 1, lo_open=True, default=0.1),
        "max_lr": Num(
            "one_cycle: the peak learning rate; 10 times lr when left out",
            0,
            MAX_LR,
            lo_open=True,
            default=None,
        ),
    },
    default={},
)

AUGMENT = Section(
    "Random changes to training images, and normalisation (image datasets only).",
    "augment",
    {
        "random_crop_padding": Int(
            "pad by this many pixels, then crop back to the input size at a random place; 0 is off",
            0,
            MAX_KERNEL,
            default=0,
        ),
        "horizontal_flip": Bool("flip half the images left to right", default=False),
        "normalize_mean": Nums(
            "per channel, subtracted from pixel values scaled to [0, 1]",
            -10,
            10,
            min_len=1,
            max_len=64,
            default=None,
        ),
        "normalize_std": Nums(
            "per channel, what pixel values are divided by after the mean is subtracted",
            0,
            100,
            lo_open=True,
            min_len=1,
            max_len=64,
            default=None,
        ),
    },
    default={},
)

TRAINING = Section(
    "How the model is trained.",
    "training",
    {
        "optimizer": OPTIMIZER,
        "schedule": SCHEDULE,
        "loss": Choice(
            "left out or null: cross_entropy for multiclass tasks, binary_cross_entropy for "
            "binary ones",
            ("cross_entropy", "binary_cross_entropy", "mse"),
            default=None,
        ),
        "epochs": Int("passes over the training set", 1, MAX_EPOCHS),
        "batch_size": Int("samples per step", 1, MAX_BATCH),
        "augment": AUGMENT,
        "seed": Int(
            "seeds the initial weights, the shuffling and the augmentation", 0, MAX_SEED, default=0
        ),
    },
)

# Settings that only some optimizers or schedules use: giving one to another is a mistake.
USED_BY = {
    "optimizer": {"momentum": ("sgd", "rmsprop"), "nesterov": ("sgd",), "betas": ("adam", "adamw")},
    "schedule": {"step_size": ("step",), "gamma": ("step",), "max_lr": ("one_cycle",)},
}


def training_problems(training: TrainingSpec) -> list[tuple[str, str]]:
    """(path, message) for settings that are fine alone but not together."""
    problems = _unused(training)
    opt, schedule, augment = training.optimizer, training.schedule, training.augment
    if opt.type == "sgd" and opt.nesterov and opt.momentum == 0:
        message = (
            "training.optimizer.nesterov needs momentum above 0; set training.optimizer.momentum "
            "(for example to 0.9) or turn nesterov off"
        )
        problems.append(("training.optimizer.nesterov", message))
    if schedule.type == "one_cycle" and schedule.max_lr is None and 10 * opt.lr > MAX_LR:
        message = (
            f"one_cycle peaks at 10 times lr = {number(10 * opt.lr)} unless told otherwise, "
            f"above the limit of {MAX_LR}; set training.schedule.max_lr"
        )
        problems.append(("training.schedule.max_lr", message))
    problems.extend(_normalisation(augment.normalize_mean, augment.normalize_std))
    return problems


def _unused(training: TrainingSpec) -> list[tuple[str, str]]:
    problems = []
    for section, names in USED_BY.items():
        spec, fields = getattr(training, section), TRAINING.fields[section].fields
        for name, users in names.items():
            if getattr(spec, name) == fields[name].default or spec.type in users:
                continue
            s = "s" if len(users) > 1 else ""
            message = (
                f"training.{section}.{name} is a setting of the {all_of(list(users))} "
                f"{section}{s}, not of {spec.type}; remove it"
            )
            problems.append((f"training.{section}.{name}", message))
    return problems


def _normalisation(mean, std) -> list[tuple[str, str]]:
    path = "training.augment.normalize_"
    if (mean is None) != (std is None):
        missing = "std" if std is None else "mean"
        message = f"{path}{missing} is missing; normalize_mean and normalize_std go together"
        return [(path + missing, message)]
    if mean is not None and len(mean) != len(std):
        message = (
            f"{path}mean has {plural(len(mean), 'value')} but {path}std has {count(len(std))}; "
            "give both one value per channel"
        )
        return [(path + "std", message)]
    return []
