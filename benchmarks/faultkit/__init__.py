"""Pieces of `benchmarks/faults.py`: bad media (media.py), what a command's run must look like
(checks.py), and the cases per tool (inputs.py: bad inputs; kills.py: kill -9 and full disks;
races.py: two identical runs at once)."""
