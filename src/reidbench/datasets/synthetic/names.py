"""File names of a synthetic dataset that other modules read without importing the
generator (e.g. datasets/attributes.py deriving attributes from an older set)."""

IDENTITIES_FILE = "reidbench-synthetic-identities.json"
