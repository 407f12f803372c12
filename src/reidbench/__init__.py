"""reidbench: LVLM judges and person ReID models side by side on person re-identification."""

__version__ = "0.1.0"
