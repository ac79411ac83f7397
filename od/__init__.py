"""od: MusicGen with new conditioning signals.

Importing od (or any of its library modules) changes nothing in the process: no environment
variable, warning filter or upstream patch. od's commands start with `od.core.environment.setup()`
(the first statement of every command, od/<command>.py and od/train.py: offline hub, od's team config for AudioCraft,
weights-only loading, librosa's kernel cache); a program using od as a library calls it too when
it wants the same environment, before it imports AudioCraft. Upstream patches are applied by
`od.conditioners.hooks.install()`, which od's model builders call.
"""

__version__ = '0.1.0'
