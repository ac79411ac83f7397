"""The run report: `reports/<name>/index.html` and the pictures it shows (od.pipeline writes it)."""
