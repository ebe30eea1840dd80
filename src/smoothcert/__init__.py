"""smoothcert: certified robustness by randomized smoothing with noise of all shapes and sizes.

The public API is re-exported here and imported lazily, so ``import smoothcert`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from smoothcert._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "Norm": "smoothcert.norms",
    "convert_radius": "smoothcert.norms",
    "Noise": "smoothcert.noises.base",
    "register_noise": "smoothcert.noises.base",
    "get_noise": "smoothcert.noises",
    "list_noises": "smoothcert.noises",
    "clopper_pearson_lower": "smoothcert.stats",
    "SmoothedClassifier": "smoothcert.certify.classifier",
    "Certificate": "smoothcert.certify.certificate",
    "Prediction": "smoothcert.certify.certificate",
    "get_dataset": "smoothcert.data",
    "list_datasets": "smoothcert.data",
    "register_dataset": "smoothcert.data",
    "get_model": "smoothcert.models",
    "list_models": "smoothcert.models",
    "register_model": "smoothcert.models",
    "load_checkpoint": "smoothcert.models.checkpoint",
    "certify_adaptive": "smoothcert.certify.adaptive",
    "required_p_lower": "smoothcert.certify.adaptive_rule",
    "read_results": "smoothcert.analysis.results",
    "certified_accuracy": "smoothcert.analysis.accuracy",
    "envelope": "smoothcert.analysis.accuracy",
    "smoothed_risk": "smoothcert.pal_sulam.risk.evaluate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'smoothcert' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
