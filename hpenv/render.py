"""Pictures of an episode: learning curves and hyperparameter trajectories.

matplotlib (a dependency of stable-baselines3) is imported only when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def render_episode(
    history: Sequence[dict[str, Any]], tuned: Sequence[str], title: str = ""
) -> np.ndarray:
    """RGB array (H, W, 3) of the losses and the tuned hyperparameters over progress."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    progress = [h["progress"] for h in history]
    figure = Figure(figsize=(8, 3.2), dpi=80)
    losses, params = figure.subplots(1, 2)
    losses.plot(progress, [h["train_loss"] for h in history], "o-", label="train loss", ms=3)
    losses.plot(progress, [h["val_loss"] for h in history], "o-", label="val loss", ms=3)
    losses.set_yscale("log")
    losses.set_xlabel("progress")
    losses.set_title(title)
    losses.legend(fontsize="small")
    for name in tuned:
        params.step(progress, [h["hparams"][name] for h in history], where="post", label=name)
    params.set_yscale("log")
    params.set_xlabel("progress")
    params.set_title("hyperparameters")
    params.legend(fontsize="small")
    figure.tight_layout()
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
