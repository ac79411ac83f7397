"""Command-line entry points: argument parsing over library functions (`python -m od.commands.<name>`)."""
