"""`Task`: a dataset, a model family, default hyperparameters and a default budget."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from hpenv.hyperparams import HParams
from hpenv.tasks.data import DatasetInfo, TaskData, TextConfig, load_task_data
from hpenv.tasks.models import ModelBuilder, ModelInput

LossName = Literal["cross_entropy", "binary"]
AugmentName = Literal["none", "crop_flip"]


@dataclass(frozen=True)
class Task:
    """One thing to train.

    Attributes:
        name: Registry name (``mnist``, ``cifar10``, ...).
        description: One line for listings.
        models: Model variant name to builder.
        model: The variant this task builds (a key of ``models``).
        defaults: Default hyperparameters (the optimizer's kind included).
        budget_epochs: Default training budget, in passes over the training split.
        loss: ``cross_entropy`` (multi-class) or ``binary`` (one logit, BCE).
        augment: ``crop_flip`` (random 4-pixel-padded crop and horizontal flip,
            batched on the device) or ``none``.
        dataset: Where the data comes from; None when ``generate`` makes it.
        text: Vocabulary size and sequence length of text tasks.
        generate: Builds the data in memory (task families); used instead of
            ``dataset``.
        val_size: Default number of validation samples scored by
            `TrainingRun.evaluate` (a fixed subset of the validation split).
        transform: Applied to the loaded data before any subset (a deterministic
            variant of a dataset: rotated images, noisy labels; `hpenv.tasks.variants`).
    """

    name: str
    description: str
    models: Mapping[str, ModelBuilder]
    model: str
    defaults: HParams
    budget_epochs: float
    loss: LossName = "cross_entropy"
    augment: AugmentName = "none"
    dataset: DatasetInfo | None = None
    text: TextConfig | None = None
    generate: Callable[[], TaskData] | None = field(default=None, compare=False)
    val_size: int = 2_000
    transform: Callable[[TaskData], TaskData] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.model not in self.models:
            raise ValueError(
                f"task {self.name!r} has no model {self.model!r}; variants: {sorted(self.models)}"
            )
        if (self.dataset is None) == (self.generate is None):
            raise ValueError("a task needs exactly one of dataset= and generate=")

    def with_model(self, model: str) -> Task:
        """The same task with another model variant."""
        return dataclasses.replace(self, model=model)

    def load_data(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        subset: float | None = None,
        subset_seed: int = 0,
        use_cache: bool = True,
        test_from_val: bool = False,
    ) -> TaskData:
        """Load this task's data (CPU tensors).

        Args:
            data_dir: Local data directory; defaults to ``HPENV_DATA_DIR``.
            subset: Keep this seeded fraction of the training split.
            subset_seed: Seed of the subset draw.
            use_cache: Use the processed-tensor cache.
            test_from_val: Data without a test split lends half of its validation
                split to one (`TaskData.test_from_val`, before the task's transform).
        """
        if self.generate is not None:
            data = self.generate()
        else:
            assert self.dataset is not None
            data = load_task_data(
                self.dataset, data_dir=data_dir, text_config=self.text, use_cache=use_cache
            )
        if test_from_val:
            data = data.test_from_val()
        if self.transform is not None:
            data = self.transform(data)
        return data.subset(subset, subset_seed)

    def model_input(self, data: TaskData) -> ModelInput:
        return ModelInput(
            shape=data.input_shape,
            num_outputs=1 if self.loss == "binary" else data.num_classes,
            vocab_size=data.vocab_size,
        )

    def build_model(self, data: TaskData, dropout: float | None = None) -> nn.Module:
        """Build this task's model for ``data`` (weights still to be initialised)."""
        p = self.defaults.dropout if dropout is None else dropout
        return self.models[self.model](self.model_input(data), p)

    def budget_samples(self, data: TaskData) -> int:
        """Default budget in training samples: ``budget_epochs`` passes over the train split."""
        return round(self.budget_epochs * data.train_x.shape[0])
