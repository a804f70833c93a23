"""Task variants built from the offline data: other architectures, transformed inputs, noisy labels.

They make the held-out evaluation suite (`HELDOUT_TASKS`) discriminate between
methods at CPU budgets: a convolutional MNIST, MNIST rotated by up to 45
degrees, MNIST with 40% of its training labels replaced at random (a run that
keeps a high rate memorises the noise), IMDB with a convolution over tokens (it
learns at CPU budgets, unlike the LSTM), the digits through a CNN, a deeper and
wider synthetic network than the family draws, and a scikit-learn table that
does not saturate (diabetes progression above the median). None of them is in
meta-training's suite.

Transforms are deterministic (fixed seeds) and applied after loading, so a
variant's data is the same on every machine; validation and test splits are
transformed like the training split, except that label noise touches the
training split only.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpenv.tasks.data.spec import TaskData
from hpenv.tasks.models import Dropout, ModelInput

#: Seed of every variant's transform (angles, noisy labels).
VARIANT_SEED = 31_415


def rotate(data: TaskData, max_degrees: float = 45.0, seed: int = VARIANT_SEED) -> TaskData:
    """Every image rotated by its own angle, uniform in [-max_degrees, max_degrees].

    Images are ``(N, C, H, W)`` bytes (MNIST) or flat rows of a square number of
    features (the 8x8 digits: ``(N, 64)`` floats), which stay flat and float.
    """
    gen = torch.Generator().manual_seed(seed)

    def turn(x: torch.Tensor) -> torch.Tensor:
        flat = x.dim() == 2
        if flat:
            side = math.isqrt(x.shape[1])
            if side * side != x.shape[1]:
                raise ValueError(f"rotate needs images or square rows, got {tuple(x.shape)}")
            images = x.reshape(x.shape[0], 1, side, side)
        else:
            images = x
        angles = (torch.rand(x.shape[0], generator=gen) * 2 - 1) * math.radians(max_degrees)
        cos, sin = torch.cos(angles), torch.sin(angles)
        zeros = torch.zeros_like(cos)
        theta = torch.stack(
            [torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1
        )
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        turned = F.grid_sample(images.float(), grid, align_corners=False, padding_mode="zeros")
        if flat:
            return turned.flatten(1).to(x.dtype)
        return turned.round().clamp(0, 255).to(torch.uint8)

    return dataclasses.replace(
        data,
        train_x=turn(data.train_x),
        val_x=turn(data.val_x),
        test_x=None if data.test_x is None else turn(data.test_x),
        source=f"{data.source}, rotated up to {max_degrees:g} degrees (seed {seed})",
    )


def noisy_labels(data: TaskData, fraction: float = 0.4, seed: int = VARIANT_SEED) -> TaskData:
    """``fraction`` of the training labels replaced by uniformly random ones (val/test clean)."""
    rng = np.random.default_rng(seed)
    labels = data.train_y.clone()
    flip = torch.from_numpy(rng.random(labels.shape[0]) < fraction)
    random = torch.from_numpy(rng.integers(0, data.num_classes, size=labels.shape[0]))
    labels[flip] = random[flip]
    return dataclasses.replace(
        data,
        train_y=labels,
        source=f"{data.source}, {fraction:.0%} of the training labels random (seed {seed})",
    )


class TextConv(nn.Module):
    """Embedding, a 1-D convolution over tokens, global max pooling, output layer."""

    def __init__(
        self, vocab_size: int, num_outputs: int, dropout: float, dim: int = 64, width: int = 5
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.drop = Dropout(dropout)
        self.conv = nn.Conv1d(dim, 128, width, padding=width // 2)
        self.out = nn.Linear(128, num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.embed(tokens)).transpose(1, 2)
        pooled = F.relu(self.conv(x)).amax(dim=-1)
        return self.out(self.drop(pooled))


def text_conv(spec: ModelInput, dropout: float) -> nn.Module:
    return TextConv(spec.vocab_size, spec.num_outputs, dropout)


def square_cnn(spec: ModelInput, dropout: float) -> nn.Module:
    """A small CNN over flat features laid out as one square image (the 8x8 digits)."""
    side = math.isqrt(spec.shape[0])
    if side * side != spec.shape[0]:
        raise ValueError(f"square_cnn needs a square number of features, got {spec.shape}")
    return nn.Sequential(
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        Dropout(dropout),
        nn.Linear(32 * (side // 2) ** 2, 64),
        nn.ReLU(),
        nn.Linear(64, spec.num_outputs),
    )
