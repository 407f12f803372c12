"""Metrics: retrieval (CMC/mAP/mINP, re-ranking), verification, consistency, statistics.

Re-exports are plain `import x as x` lines (explicit re-exports for ruff), one per name.
"""

from reidbench.metrics.rerank import k_reciprocal_distance as k_reciprocal_distance
from reidbench.metrics.rerank import re_ranking as re_ranking
from reidbench.metrics.rerank import rerank_memory_bytes as rerank_memory_bytes
from reidbench.metrics.retrieval import RetrievalResult as RetrievalResult
from reidbench.metrics.retrieval import evaluate_features as evaluate_features
from reidbench.metrics.retrieval import evaluate_retrieval as evaluate_retrieval
from reidbench.metrics.retrieval import pairwise_distance as pairwise_distance
from reidbench.metrics.run import compute_metrics as compute_metrics
from reidbench.metrics.run import write_metrics as write_metrics
from reidbench.metrics.splits import calibration_mask as calibration_mask
from reidbench.metrics.splits import split_halves as split_halves
from reidbench.metrics.stats import bootstrap_ci as bootstrap_ci
from reidbench.metrics.stats import mcnemar as mcnemar
from reidbench.metrics.stats import paired_bootstrap_auc as paired_bootstrap_auc
from reidbench.metrics.verification import best_f1_threshold as best_f1_threshold
from reidbench.metrics.verification import ranking_metrics as ranking_metrics
from reidbench.metrics.verification import threshold_metrics as threshold_metrics
