"""Command-line entry points: argument parsing over library functions (`python -m od.commands.<name>`,
the documented `python -m od.<name>` aliases, the `od-*` console scripts).

Importing this package is a command's start-up: od's process environment (offline hub, od's team
config, weights-only loading, librosa's kernel cache; od.environment.setup) is set here, before a
command module imports AudioCraft or anything that reads those settings at import time. Library
modules never set it.
"""
from .. import environment

environment.setup()
