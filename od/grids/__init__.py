"""Dora grids: `dora grid <name>` runs the explorer in `od/grids/<name>.py` (SLURM or local)."""
