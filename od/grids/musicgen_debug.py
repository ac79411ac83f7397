"""A small learning-rate sweep of the debug solver, to check a cluster set-up end to end.

    dora grid musicgen_debug --dry_run --init   # list the XPs without launching
    dora grid musicgen_debug                    # launch them on SLURM
"""
from dora import Explorer, Launcher


@Explorer
def explorer(launcher: Launcher):
    launcher.slurm_(gpus=1)  # partition, CPUs, memory, time: the team file's cluster entry
    launcher.bind_({'solver': 'musicgen/debug', 'dset': 'audio/example'})
    for lr in [1e-3, 3e-4]:
        launcher({'optim.lr': lr})
