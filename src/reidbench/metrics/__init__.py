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
