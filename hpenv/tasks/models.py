"""Model families trained by the tasks.

Every model takes ``dropout`` and uses `Dropout` from this module, whose
probability a `TrainingRun` can change between intervals and whose random
masks come from the run's own ``torch.Generator`` (no global RNG). Weights
are initialised by `init_parameters` from the same generator, so one seed
gives one model on any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelInput:
    """What a model builder needs to know about the data.

    Attributes:
        shape: Shape of one input sample (``(C, H, W)`` images, ``(L,)`` token ids,
            ``(D,)`` features).
        num_outputs: Width of the output layer (classes, or 1 for binary tasks).
        vocab_size: Token vocabulary size for text tasks, else 0.
    """

    shape: tuple[int, ...]
    num_outputs: int
    vocab_size: int = 0


class ModelBuilder(Protocol):
    def __call__(self, spec: ModelInput, dropout: float) -> nn.Module: ...


class Dropout(nn.Module):
    """Inverted dropout drawing its masks from an explicit ``torch.Generator``.

    ``p`` is a plain attribute, so it can be changed while training. The
    generator is assigned by the owner (`TrainingRun`); ``None`` falls back to
    torch's default generator.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty_like(x).bernoulli_(keep, generator=self.generator)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def mlp(spec: ModelInput, dropout: float, hidden: tuple[int, ...] = (512, 512)) -> nn.Module:
    """Fully connected ReLU network with dropout after each hidden layer."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(spec.shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, spec.num_outputs))
    return nn.Sequential(*layers)


def small_cnn(spec: ModelInput, dropout: float) -> nn.Module:
    """Conv 32 3x3, MaxPool 2, Conv 64 3x3, MaxPool 2, FC 128, FC out (padding 1).

    The CIFAR-10 default model and the MNIST/Fashion-MNIST CNN variant.
    """
    channels, height, width = spec.shape
    flat = 64 * (height // 4) * (width // 4)
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        Dropout(dropout),
        nn.Linear(flat, 128),
        nn.ReLU(),
        Dropout(dropout),
        nn.Linear(128, spec.num_outputs),
    )


def small_synthetic_cnn(
    spec: ModelInput, dropout: float, width: int, shape: tuple[int, int, int]
) -> nn.Module:
    """The synthetic family's convolutional student on flat inputs of image ``shape``
    (C, H, W): Unflatten, Conv c 3x3, MaxPool 2, Conv 2c 3x3, MaxPool 2, FC out
    (padding 1), with c = ``width // 8`` clamped to 4..16."""
    channels, height, width_px = shape
    c = min(16, max(4, width // 8))
    flat = 2 * c * (height // 4) * (width_px // 4)
    return nn.Sequential(
        nn.Unflatten(1, shape),
        nn.Conv2d(channels, c, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        Dropout(dropout),
        nn.Linear(flat, spec.num_outputs),
    )


def resnet18(spec: ModelInput, dropout: float) -> nn.Module:
    """torchvision's ResNet-18 adapted to 32x32 inputs (3x3 stem, no max-pool)."""
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None, num_classes=spec.num_outputs)
    net.conv1 = nn.Conv2d(spec.shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Sequential(Dropout(dropout), net.fc)
    return net


class TextLSTM(nn.Module):
    """Embedding, one LSTM layer, FC ReLU, output layer; reads the last hidden state.

    Sequences are left-padded with token 0, so the last time step is real text.
    """

    def __init__(
        self,
        vocab_size: int,
        num_outputs: int,
        dropout: float,
        embed_dim: int = 128,
        hidden: int = 128,
        fc: int = 128,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.drop_in = Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, fc)
        self.drop_out = Dropout(dropout)
        self.out = nn.Linear(fc, num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.drop_in(self.embed(tokens))
        _, (h, _) = self.lstm(x)
        return self.out(self.drop_out(F.relu(self.fc(h[-1]))))


def text_lstm(spec: ModelInput, dropout: float) -> nn.Module:
    return TextLSTM(spec.vocab_size, spec.num_outputs, dropout)


class _EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop1 = Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, ff)
        self.ff2 = nn.Linear(ff, dim)
        self.drop2 = Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.heads, -1).unbind(2)
        attn = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=keep
        )
        x = x + self.drop1(self.proj(attn.transpose(1, 2).reshape(batch, length, dim)))
        return x + self.drop2(self.ff2(F.gelu(self.ff1(self.norm2(x)))))


class TextTransformer(nn.Module):
    """A small pre-norm Transformer encoder with masked mean pooling."""

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        num_outputs: int,
        dropout: float,
        dim: int = 128,
        heads: int = 4,
        layers: int = 2,
        ff: int = 256,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Embedding(seq_len, dim)
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(_EncoderBlock(dim, heads, ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keep = tokens != 0
        # A sequence of only padding would give NaN attention: let it attend to itself.
        keep = keep | ~keep.any(dim=1, keepdim=True)
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.drop(self.embed(tokens) + self.pos(positions))
        mask = keep[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask)
        weights = keep.unsqueeze(-1).to(x.dtype)
        pooled = (self.norm(x) * weights).sum(1) / weights.sum(1)
        return self.out(pooled)


def text_transformer(spec: ModelInput, dropout: float) -> nn.Module:
    return TextTransformer(spec.vocab_size, spec.shape[0], spec.num_outputs, dropout)


@torch.no_grad()
def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """(Re)initialise every parameter of ``model`` from ``generator``.

    Uses PyTorch's default schemes (Kaiming-uniform for linear and conv layers,
    N(0, 1) for embeddings, U(-1/sqrt(h), 1/sqrt(h)) for LSTMs, ones/zeros for
    normalisation layers), but draws from ``generator`` instead of the global
    RNG. Raises for a parameterised layer it does not know, rather than leave
    it initialised from global state.
    """
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, generator=generator)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LSTM):
            bound = 1 / math.sqrt(module.hidden_size)
            for param in module.parameters():
                nn.init.uniform_(param, -bound, bound, generator=generator)
        elif isinstance(module, nn.BatchNorm2d | nn.LayerNorm):
            if module.weight is not None:
                nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif any(True for _ in module.parameters(recurse=False)):
            raise TypeError(f"init_parameters does not know how to initialise {type(module)}")
