"""Synthetic pedestrians in the exact Market-1501 layout: the offline default dataset.

One module per part of the generator (docs/synthetic.md, "Modules"): `build` (plan,
files, marker, resume: `generate`), `identity`, `render`, `scene`, `camera`, `check`
(the colour-histogram matcher), `sheet` (the contact sheet). The public API is
re-exported here:

    from reidbench.datasets.synthetic import generate
"""

from reidbench.datasets.synthetic.build import DEFAULT_TEST_IDS as DEFAULT_TEST_IDS
from reidbench.datasets.synthetic.build import DEFAULT_TRAIN_IDS as DEFAULT_TRAIN_IDS
from reidbench.datasets.synthetic.build import FOLDERS as FOLDERS
from reidbench.datasets.synthetic.build import GENERATOR as GENERATOR
from reidbench.datasets.synthetic.build import GENERATOR_VERSION as GENERATOR_VERSION
from reidbench.datasets.synthetic.build import IDENTITIES_FILE as IDENTITIES_FILE
from reidbench.datasets.synthetic.build import MARKER as MARKER
from reidbench.datasets.synthetic.build import MAX_CAMERAS as MAX_CAMERAS
from reidbench.datasets.synthetic.build import MAX_IDS as MAX_IDS
from reidbench.datasets.synthetic.build import NOTE as NOTE
from reidbench.datasets.synthetic.build import Job as Job
from reidbench.datasets.synthetic.build import generate as generate
from reidbench.datasets.synthetic.build import plan_counts as plan_counts

__all__ = [
    "DEFAULT_TEST_IDS",
    "DEFAULT_TRAIN_IDS",
    "FOLDERS",
    "GENERATOR",
    "GENERATOR_VERSION",
    "IDENTITIES_FILE",
    "MARKER",
    "MAX_CAMERAS",
    "MAX_IDS",
    "NOTE",
    "Job",
    "generate",
    "plan_counts",
]
