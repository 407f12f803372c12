"""Dataset loaders (torchreid protocol) and the synthetic pedestrian generator.

`load_dataset(root, format=None, ...)` is the one entry point other stages use.
"""

from typing import Any

from reidbench.datasets.base import SPLITS, Dataset, ImageRecord
from reidbench.datasets.detect import detect_format, load_dataset
from reidbench.datasets.registry import (
    DatasetFormat,
    Detection,
    dataset_formats,
    get_dataset_format,
    register_dataset_format,
)
from reidbench.datasets.verify import verify_images


def __getattr__(name: str) -> Any:
    """FORMATS reads the live registry (plugins included), so it is looked up, not copied."""
    if name == "FORMATS":
        return tuple(dataset_formats())
    raise AttributeError(name)


__all__ = [
    "FORMATS",
    "SPLITS",
    "Dataset",
    "DatasetFormat",
    "Detection",
    "ImageRecord",
    "dataset_formats",
    "detect_format",
    "get_dataset_format",
    "load_dataset",
    "register_dataset_format",
    "verify_images",
]
