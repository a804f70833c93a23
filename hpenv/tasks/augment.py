"""Image augmentation that runs batched on the training device."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_flip(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel-padded crop plus random horizontal flip, as one gather.

    Args:
        images: (B, C, H, W) batch, any dtype (uint8 keeps the gather cheap).
        generator: Source of randomness, on the images' device.
        pad: Zero padding on each side before cropping back to (H, W).
    """
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    shift_y = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator, device=device)
    shift_x = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator, device=device)
    rows = shift_y + torch.arange(height, device=device)
    cols = shift_x + torch.arange(width, device=device)
    flip = torch.rand((batch, 1), generator=generator, device=device) < 0.5
    cols = torch.where(flip, cols.flip(1), cols)
    return padded[
        torch.arange(batch, device=device)[:, None, None, None],
        torch.arange(channels, device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
