"""Dataset loaders (torchreid protocol) and the synthetic pedestrian generator.

`load_dataset(root, format=None, ...)` is the one entry point other stages use.
"""

from reidbench.datasets.base import SPLITS, Dataset, ImageRecord

__all__ = ["SPLITS", "Dataset", "ImageRecord"]
