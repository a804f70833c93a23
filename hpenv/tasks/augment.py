"""Image augmentation that runs batched on the training device.

`crop_flip` is `draw_crop_flip` (the random draws, from an explicit generator)
followed by `apply_crop_flip` (one gather); the population engine draws per
member with each member's generator and applies once for all members.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: A crop-and-flip draw: (shift_y, shift_x, flip), each of shape (B, 1).
CropFlip = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def crop_flip(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel-padded crop plus random horizontal flip, as one gather.

    Args:
        images: (B, C, H, W) batch, any dtype (uint8 keeps the gather cheap).
        generator: Source of randomness, on the images' device.
        pad: Zero padding on each side before cropping back to (H, W).
    """
    draw = draw_crop_flip(images.shape[0], generator, images.device, pad)
    return apply_crop_flip(images, draw, pad)


def draw_crop_flip(
    batch: int, generator: torch.Generator, device: torch.device, pad: int = 4
) -> CropFlip:
    """The random part of `crop_flip` for ``batch`` images: shifts in [0, 2 pad] and flips."""
    shift_y = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator, device=device)
    shift_x = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator, device=device)
    flip = torch.rand((batch, 1), generator=generator, device=device) < 0.5
    return shift_y, shift_x, flip


def apply_crop_flip(images: torch.Tensor, draw: CropFlip, pad: int = 4) -> torch.Tensor:
    """Crop and flip (B, C, H, W) ``images`` as ``draw`` (from `draw_crop_flip`) says."""
    batch, channels, height, width = images.shape
    device = images.device
    shift_y, shift_x, flip = draw
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = shift_y + torch.arange(height, device=device)
    cols = shift_x + torch.arange(width, device=device)
    cols = torch.where(flip, cols.flip(1), cols)
    return padded[
        torch.arange(batch, device=device)[:, None, None, None],
        torch.arange(channels, device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
