"""A seeded family of generated classification tasks, for cheap meta-training variety.

Sampling (cheap) is separate from building (generating data, training):
`SyntheticFamily.sample(rng)` draws a `SyntheticSpec`; `SyntheticSpec.task()`
turns it into a `Task` whose data is generated on demand.

>>> import numpy as np
>>> spec = SyntheticFamily().sample(np.random.default_rng(0))
>>> spec == SyntheticFamily().sample(np.random.default_rng(0))
True
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch

from hpenv.hyperparams import DEFAULT_LR, HParams, OptimizerName
from hpenv.tasks.data import TaskData
from hpenv.tasks.models import ModelInput, mlp, small_synthetic_cnn
from hpenv.tasks.spec import Task
from hpenv.tasks.variants import TextConv


@dataclass(frozen=True)
class SyntheticSpec:
    """One generated task.

    Inputs are normal with per-feature scales ``input_scale * 10**u``, ``u``
    uniform in [-conditioning, conditioning] (so tasks differ in how large a
    learning rate they tolerate); labels come from a random two-layer tanh
    teacher network on the standardised inputs (argmax of its outputs), then a
    ``noise`` fraction of the labels is replaced by uniformly random ones. The
    student is an MLP trained at ``batch_size``.

    With ``image`` > 0 the task is convolutional: inputs are ``input_dim``-channel
    ``image`` x ``image`` images of spatially smooth noise (per-channel scales as
    above; stored flat, as the digits are, and unflattened by the model),
    labelled by a random convolutional teacher (3x3 filters, tanh, 2x2 average
    pooling, a linear read-out); the student is a small CNN
    (`hpenv.tasks.models.small_synthetic_cnn`: two 3x3 convolutions of ``width //
    8`` (4 to 16) and twice as many channels, each followed by 2x2 max pooling,
    then a linear layer). ``depth`` is unused.

    With ``vocab`` > 0 the task is a token task (text-like): inputs are
    sequences of ``input_dim`` token ids, left-padded with 0 to a length drawn
    uniformly from a quarter of ``input_dim`` up to all of it, the ids drawn
    from a Zipf-like law over ``vocab`` ids (2 to ``vocab`` - 1; 0 pads, 1 is
    reserved for out-of-vocabulary as in real text data). A random
    bag-of-words teacher labels them: a quarter of the ids carry a random
    weight per class, the label is the argmax of the weights summed over the
    sequence. The student is the held-out text model's architecture,
    `hpenv.tasks.variants.TextConv` (an ``N(0, 1)`` embedding of ``width // 2``
    (16 to 64) dimensions, a 1-D convolution of width 5, global max pooling, a
    linear layer), whose embedding moves little per step at Adam's default
    rate: the tasks where a good rate is far above the default. ``depth``,
    ``input_scale`` and ``conditioning`` are unused.

    Attributes:
        input_dim: Number of input features.
        num_classes: Number of classes.
        noise: Fraction of labels replaced at random.
        num_samples: Training samples (validation and test each get a fifth of this).
        width: Hidden width of the student MLP.
        depth: Hidden layers of the student MLP.
        input_scale: Typical magnitude of the inputs.
        conditioning: Spread of the per-feature scales, in decades either way.
        batch_size: The task's default batch size.
        seed: Seed of the data-generating process.
        steps: Budget in optimizer steps (converted to epochs, 1 to 40).
        optimizer: The task's default optimizer (its default learning rate is
            `hpenv.hyperparams.DEFAULT_LR`'s).
        image: Side of the square input images (0: feature vectors and an MLP).
        vocab: Token vocabulary, padding and out-of-vocabulary ids included (0: not a
            token task); ``input_dim`` is then the sequence length.
    """

    input_dim: int = 32
    num_classes: int = 4
    noise: float = 0.05
    num_samples: int = 4_000
    width: int = 128
    depth: int = 2
    input_scale: float = 1.0
    conditioning: float = 0.0
    batch_size: int = 64
    seed: int = 0
    steps: int = 1_200
    optimizer: OptimizerName = "adam"
    image: int = 0
    vocab: int = 0

    def __post_init__(self) -> None:
        if self.input_dim < 1 or self.num_classes < 2 or self.num_samples < 10:
            raise ValueError(f"invalid synthetic spec {self}")
        if not 0.0 <= self.noise < 1.0 or self.width < 1 or self.depth < 0:
            raise ValueError(f"invalid synthetic spec {self}")
        if not (self.input_scale > 0 and self.conditioning >= 0 and self.batch_size >= 1):
            raise ValueError(f"invalid synthetic spec {self}")
        if self.steps < 1 or self.image < 0 or 0 < self.image < 4:
            raise ValueError(f"invalid synthetic spec {self}")
        if self.vocab < 0 or 0 < self.vocab < 8 or (self.vocab and self.image):
            raise ValueError(f"invalid synthetic spec {self}")

    def generate(self) -> TaskData:
        """Generate train, validation and test splits (deterministic in the spec)."""
        if self.image:
            return self._generate_images()
        if self.vocab:
            return self._generate_tokens()
        rng = np.random.default_rng(self.seed)
        hidden = 4 * self.num_classes + 16
        w1 = rng.normal(size=(self.input_dim, hidden)) / np.sqrt(self.input_dim)
        w2 = rng.normal(size=(hidden, self.num_classes))
        n_eval = max(1, self.num_samples // 5)
        total = self.num_samples + 2 * n_eval
        z = rng.normal(size=(total, self.input_dim))
        labels = np.argmax(np.tanh(2.0 * z @ w1) @ w2, axis=1)
        exponents = rng.uniform(-self.conditioning, self.conditioning, size=self.input_dim)
        x = (z * self.input_scale * 10.0**exponents).astype(np.float32)
        flip = rng.random(total) < self.noise
        labels[flip] = rng.integers(0, self.num_classes, size=int(flip.sum()))
        xt, yt = torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))
        a, b = self.num_samples, self.num_samples + n_eval
        return TaskData(
            train_x=xt[:a],
            train_y=yt[:a],
            val_x=xt[a:b],
            val_y=yt[a:b],
            test_x=xt[b:],
            test_y=yt[b:],
            kind="tabular",
            num_classes=self.num_classes,
            source=f"generated {self}",
        )

    def _generate_images(self) -> TaskData:
        """`generate` for a convolutional spec (see the class docstring)."""
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        channels, side = self.input_dim, self.image
        n_eval = max(1, self.num_samples // 5)
        total = self.num_samples + 2 * n_eval
        with torch.no_grad():
            z = torch.randn(total, channels, side, side, generator=gen)
            blur = torch.ones(channels, 1, 3, 3) / 9.0  # spatially smooth inputs
            z = torch.nn.functional.conv2d(z, blur, padding=1, groups=channels)
            z = z / z.std()
            hidden = 4 * self.num_classes + 8
            filters = torch.randn(hidden, channels, 3, 3, generator=gen) / (3.0 * channels**0.5)
            features = torch.tanh(2.0 * torch.nn.functional.conv2d(z, filters, padding=1))
            features = torch.nn.functional.avg_pool2d(features, 2).flatten(1)
            readout = torch.randn(features.shape[1], self.num_classes, generator=gen)
            labels = (features @ readout).argmax(dim=1).numpy()
        exponents = rng.uniform(-self.conditioning, self.conditioning, size=channels)
        scales = torch.from_numpy(self.input_scale * 10.0**exponents).float()
        x = (z * scales.view(1, channels, 1, 1)).flatten(1).contiguous()
        flip = rng.random(total) < self.noise
        labels[flip] = rng.integers(0, self.num_classes, size=int(flip.sum()))
        y = torch.from_numpy(labels.astype(np.int64))
        a, b = self.num_samples, self.num_samples + n_eval
        return TaskData(
            train_x=x[:a], train_y=y[:a], val_x=x[a:b], val_y=y[a:b], test_x=x[b:],
            test_y=y[b:], kind="tabular", num_classes=self.num_classes,
            source=f"generated {self}",
        )  # fmt: skip

    def _generate_tokens(self) -> TaskData:
        """`generate` for a token spec (see the class docstring)."""
        rng = np.random.default_rng(self.seed)
        n_eval = max(1, self.num_samples // 5)
        total, length = self.num_samples + 2 * n_eval, self.input_dim
        ids = np.arange(2, self.vocab)
        zipf = 1.0 / np.arange(1, ids.size + 1)
        tokens = rng.choice(ids, size=(total, length), p=zipf / zipf.sum())
        lengths = rng.integers(max(1, length // 4), length + 1, size=total)
        tokens[np.arange(length)[None, :] < (length - lengths)[:, None]] = 0  # left padding
        weights = rng.normal(size=(self.vocab, self.num_classes))
        weights[rng.permutation(self.vocab)[: (3 * self.vocab) // 4]] = 0.0
        weights[:2] = 0.0  # padding and out-of-vocabulary carry nothing
        labels = weights[tokens].sum(axis=1).argmax(axis=1)
        flip = rng.random(total) < self.noise
        labels[flip] = rng.integers(0, self.num_classes, size=int(flip.sum()))
        x = torch.from_numpy(tokens.astype(np.int32))
        y = torch.from_numpy(labels.astype(np.int64))
        a, b = self.num_samples, self.num_samples + n_eval
        return TaskData(
            train_x=x[:a], train_y=y[:a], val_x=x[a:b], val_y=y[a:b], test_x=x[b:],
            test_y=y[b:], kind="text", num_classes=self.num_classes,
            source=f"generated {self}", vocab_size=self.vocab,
        )  # fmt: skip

    @property
    def budget_epochs(self) -> float:
        """``steps`` optimizer steps as epochs, clamped to 1 - 40 epochs."""
        return float(min(max(self.steps * self.batch_size / self.num_samples, 1), 40))

    def build_model(self, spec: ModelInput, dropout: float) -> torch.nn.Module:
        if self.image:
            shape = (self.input_dim, self.image, self.image)
            return small_synthetic_cnn(spec, dropout, self.width, shape)
        if self.vocab:
            return TextConv(spec.vocab_size, spec.num_outputs, dropout, dim=_embed_dim(self.width))
        return mlp(spec, dropout, hidden=(self.width,) * self.depth)

    def task(self) -> Task:
        """This spec as a trainable `Task` (model ``mlp``, ``cnn`` for images, ``conv`` for
        tokens)."""
        model = "cnn" if self.image else "conv" if self.vocab else "mlp"
        return Task(
            name="synthetic",
            description=f"generated classification {self}",
            models={model: self.build_model},
            model=model,
            defaults=HParams(
                optimizer=self.optimizer,
                lr=DEFAULT_LR[self.optimizer],
                batch_size=self.batch_size,
            ),
            budget_epochs=self.budget_epochs,
            generate=functools.partial(SyntheticSpec.generate, self),
        )


@dataclass(frozen=True)
class SyntheticFamily:
    """Ranges the synthetic tasks are drawn from (inclusive).

    Sizes and budgets are drawn log-uniformly, so small and large tasks are
    equally common on a log scale. Budgets range from runs stopped well short of
    convergence (where decaying the learning rate early hurts) to runs trained
    long enough to overfit noisy labels (where it helps), so that no single
    schedule suits every task.
    """

    input_dim: tuple[int, int] = (4, 64)
    num_classes: tuple[int, int] = (2, 10)
    noise: tuple[float, float] = (0.0, 0.2)
    num_samples: tuple[int, int] = (500, 4_000)
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    depth: tuple[int, int] = (1, 4)
    input_scale: tuple[float, float] = (0.1, 30.0)
    conditioning: tuple[float, float] = (0.0, 1.5)
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128)
    #: Budget in optimizer steps, drawn log-uniformly; a task's run is at least one epoch, so
    #: a small batch on many samples lifts a short draw (`SyntheticSpec.budget_epochs`).
    steps: tuple[int, int] = (150, 1_500)
    #: Optimizers drawn uniformly (after every other draw, so the default's stream is unchanged).
    optimizers: tuple[OptimizerName, ...] = ("adam",)
    #: Fraction of convolutional tasks (`SyntheticSpec.image`), drawn last (0: none, and no
    #: draw, so the default's stream is unchanged); their image side and channels.
    conv_fraction: float = 0.0
    image_sizes: tuple[int, ...] = (8, 12, 16)
    channels: tuple[int, int] = (1, 3)
    #: Fraction of token tasks (`SyntheticSpec.vocab`) among those not convolutional, drawn
    #: after the conv draw (0: none, and no draw); their vocabulary and sequence length,
    #: log-uniform.
    text_fraction: float = 0.0
    vocab: tuple[int, int] = (200, 2_000)
    seq_len: tuple[int, int] = (16, 64)

    def __post_init__(self) -> None:
        unknown = [o for o in self.optimizers if o not in DEFAULT_LR]
        if not self.optimizers or unknown:
            raise ValueError(
                f"optimizers must name some of {sorted(DEFAULT_LR)}, got {self.optimizers}"
            )
        if not 0.0 <= self.conv_fraction <= 1.0:
            raise ValueError(f"conv_fraction must be in [0, 1], got {self.conv_fraction}")
        if not 0.0 <= self.text_fraction <= 1.0:
            raise ValueError(f"text_fraction must be in [0, 1], got {self.text_fraction}")
        if len(self.steps) != 2 or not 1 <= self.steps[0] <= self.steps[1]:
            raise ValueError(
                f"steps must be a range (low, high) with 1 <= low <= high, got {self.steps}"
            )

    def sample(self, rng: np.random.Generator) -> SyntheticSpec:
        """Draw one task spec; the spec's data seed is drawn from ``rng`` too."""
        spec = SyntheticSpec(
            input_dim=_log_int(rng, *self.input_dim),
            num_classes=int(rng.integers(self.num_classes[0], self.num_classes[1] + 1)),
            noise=float(rng.uniform(*self.noise)),
            num_samples=_log_int(rng, *self.num_samples),
            width=int(rng.choice(self.widths)),
            depth=int(rng.integers(self.depth[0], self.depth[1] + 1)),
            input_scale=float(np.exp(rng.uniform(*np.log(self.input_scale)))),
            conditioning=float(rng.uniform(*self.conditioning)),
            batch_size=int(rng.choice(self.batch_sizes)),
            seed=int(rng.integers(2**31 - 1)),
            steps=_log_int(rng, *self.steps),
        )
        if len(self.optimizers) > 1:
            optimizer = self.optimizers[int(rng.integers(len(self.optimizers)))]
            spec = dataclasses.replace(spec, optimizer=optimizer)
        if self.conv_fraction > 0 and rng.random() < self.conv_fraction:
            spec = dataclasses.replace(
                spec,
                image=int(rng.choice(self.image_sizes)),
                input_dim=int(rng.integers(self.channels[0], self.channels[1] + 1)),
            )
        if self.text_fraction > 0 and rng.random() < self.text_fraction and not spec.image:
            spec = dataclasses.replace(
                spec, vocab=_log_int(rng, *self.vocab), input_dim=_log_int(rng, *self.seq_len)
            )
        return spec

    def sample_like(self, rng: np.random.Generator, like: SyntheticSpec) -> SyntheticSpec:
        """Draw a task of ``like``'s shape: same sizes, model, batch size and budget.

        Only what leaves the data's and the model's shapes alone is drawn (a
        convolutional task stays one, of the same image size, a token task one of the same
        vocabulary and length): the
        label noise, the input scale, the conditioning and the data seed. Tasks
        of one shape can train together as one `hpenv.population.Population`.
        """
        return dataclasses.replace(
            like,
            noise=float(rng.uniform(*self.noise)),
            input_scale=float(np.exp(rng.uniform(*np.log(self.input_scale)))),
            conditioning=float(rng.uniform(*self.conditioning)),
            seed=int(rng.integers(2**31 - 1)),
        )


def _embed_dim(width: int) -> int:
    """A token task's embedding size: half the spec's width, clamped to 16..64."""
    return min(64, max(16, width // 2))


def _log_int(rng: np.random.Generator, low: int, high: int) -> int:
    return round(float(np.exp(rng.uniform(np.log(low), np.log(high)))))
