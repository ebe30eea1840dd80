"""Training base classifiers with noise: noise augmentation, stability training, fine-tuning."""

from smoothcert.training.loop import *  # noqa: F401,F403
from smoothcert.training.loop import __all__  # noqa: F401
