"""Pair curation: the labelled image pairs every system is scored on (docs/pairs.md).

One module per step of the flow: `pools` (who can pair with whom, per camera-pair
stratum), `rng` (the platform-stable random draws), `triplets` (identity triplets),
`hard` (hard-negative mining), `curate` (the pair set: draw, hash, read, write).
The public API is re-exported here:

    from reidbench.pairs import curate_pairs, write_pairs, read_pairs, pairset_hash
"""

from reidbench.pairs.curate import PAIRS_FORMAT as PAIRS_FORMAT
from reidbench.pairs.curate import SUFFIXES as SUFFIXES
from reidbench.pairs.curate import PairSet as PairSet
from reidbench.pairs.curate import check_pairs_path as check_pairs_path
from reidbench.pairs.curate import curate_pairs as curate_pairs
from reidbench.pairs.curate import pairset_hash as pairset_hash
from reidbench.pairs.curate import read_pairs as read_pairs
from reidbench.pairs.curate import write_pairs as write_pairs
from reidbench.pairs.hard import NegativeMiner as NegativeMiner
from reidbench.pairs.pools import SPLIT_CHOICES as SPLIT_CHOICES

__all__ = [
    "PAIRS_FORMAT",
    "SPLIT_CHOICES",
    "SUFFIXES",
    "NegativeMiner",
    "PairSet",
    "check_pairs_path",
    "curate_pairs",
    "pairset_hash",
    "read_pairs",
    "write_pairs",
]
