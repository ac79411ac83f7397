"""TF side of VGGish-FAD, run by the separate environment (`make fad-env`, `$TF_PYTHON_EXE`).

Imports no torch. `python -m od.fad_tf --help` lists the commands (embed, random-checkpoint,
list-variables); the main environment reaches it through od.metrics.vggish.
"""
