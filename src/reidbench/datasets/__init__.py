"""Dataset loaders (torchreid protocol) and the synthetic pedestrian generator.

`load_dataset(root, format=None, ...)` is the one entry point other stages use.
"""

from reidbench.datasets.base import SPLITS, Dataset, ImageRecord
from reidbench.datasets.detect import FORMATS, detect_format, load_dataset
from reidbench.datasets.verify import verify_images

__all__ = [
    "FORMATS",
    "SPLITS",
    "Dataset",
    "ImageRecord",
    "detect_format",
    "load_dataset",
    "verify_images",
]
