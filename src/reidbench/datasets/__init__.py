"""Dataset loaders (torchreid protocol) and the synthetic pedestrian generator."""

from reidbench.datasets.base import SPLITS, Dataset, ImageRecord

__all__ = ["SPLITS", "Dataset", "ImageRecord"]
