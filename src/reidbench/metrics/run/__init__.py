"""`metrics.json` of a run directory, one module per concern: `bootstrap` (settings and the
one door to intervals and paired tests), `thresholds`, `headline`, `curves`, `failures`,
`consistency`, `costs`, `comparisons`, `fused` (subsets: fused systems, live cascades) and
`compute` (assembly). `reidbench.metrics.run_metrics` re-exports the public names."""

from reidbench.metrics.run.bootstrap import Bootstrap as Bootstrap
from reidbench.metrics.run.compute import METRICS_FORMAT as METRICS_FORMAT
from reidbench.metrics.run.compute import compute_metrics as compute_metrics
from reidbench.metrics.run.compute import metrics_json as metrics_json
from reidbench.metrics.run.compute import write_metrics as write_metrics
