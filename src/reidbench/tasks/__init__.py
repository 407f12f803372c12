"""What a run asks its systems: pairs (the study's protocol), multiple choice, gallery ranking.

A run lists its tasks in `[[tasks]]` (docs/tasks.md); without the list it runs the
pairs task alone, as before tasks existed.
"""
