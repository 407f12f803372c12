"""reidbench: LVLM judges and person ReID models side by side on person re-identification."""

from reidbench import _moved

__version__ = "0.1.0"

_moved.install()  # old module paths (one release): see reidbench._moved
