"""Re-export: the calibration / held-out halves live in `reidbench.rundir.halves` (the run
directory model owns them, so that metrics and fusion cannot disagree)."""

from reidbench.rundir.halves import calibration_mask as calibration_mask
from reidbench.rundir.halves import split_halves as split_halves
