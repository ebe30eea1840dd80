"""Training base classifiers with noise: noise augmentation, stability training, fine-tuning.

- ``config``: ``TrainConfig``, the recipes and the training noise's description;
- ``steps``: the losses, one epoch, the per-epoch evaluation;
- ``loop``: ``train`` (checkpoints, resume, metrics files).
"""

from smoothcert.training.config import (  # noqa: F401
    DEFAULT_RECIPE,
    RECIPES,
    Recipe,
    TrainConfig,
    default_run_name,
    training_noise,
)
from smoothcert.training.loop import TrainResult, output_files, train  # noqa: F401
from smoothcert.training.steps import (  # noqa: F401
    TrainingDivergedError,
    evaluate,
    noisy_copies,
    stability_loss,
)

__all__ = ["TrainConfig", "TrainResult", "Recipe", "RECIPES", "DEFAULT_RECIPE",
           "TrainingDivergedError", "train", "training_noise", "stability_loss",
           "noisy_copies", "evaluate", "default_run_name", "output_files"]
