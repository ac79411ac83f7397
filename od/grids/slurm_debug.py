"""A small grid of the debug video solver, to check a SLURM set-up end to end (CPU is enough):
two learning rates, each one SLURM job, and one XP trained by two processes (DDP).

    python -m od.example_video                     # once: dataset/colors + egs/colors
    python -m od.tiny clip checkpoints/tiny-clip  # once: a random tiny CLIP
    AUDIOCRAFT_CLUSTER=slurm_local dora grid slurm_debug --dry_run --init       # list the XPs
    AUDIOCRAFT_CLUSTER=slurm_local dora grid slurm_debug                        # submit and monitor

The cluster entry of config/teams/default.yaml (AUDIOCRAFT_CLUSTER) gives partition, GPUs,
CPUs, memory and time. Data elsewhere: `OD_GRID_ARGS='datasource.train=... ...'` adds
overrides to every XP (the tests point it at their own copies).
"""
import os
import shlex

from dora import Explorer, Launcher

from od.core import environment

BASE = {'solver': 'musicgen/debug', 'conditioner': 'clipemb2music', 'dset': 'audio/colors',
        'conditioners.self_wav.clip_frames.name': 'checkpoints/tiny-clip',
        'conditioners.self_wav.clip_frames.n_frames': 4,
        'optim.epochs': 2, 'optim.updates_per_epoch': 6, 'dataset.batch_size': 4,
        'dataset.valid.num_samples': 4, 'dataset.generate.num_samples': 2, 'dataset.generate.batch_size': 2,
        'generate.lm.gen_duration': 2, 'dataset.num_workers': 0}


def extra_args() -> list:
    """OD_GRID_ARGS (`key=value` overrides, shell-quoted), as the command-line overrides they are
    (Hydra then types their values as it does for `dora run`)."""
    extra = shlex.split(os.environ.get('OD_GRID_ARGS', ''))
    for item in extra:
        key, sep, _ = item.partition('=')
        if not sep or not key:
            raise SystemExit(f"error: OD_GRID_ARGS: {item!r} is not key=value")
    return extra


@Explorer
def explorer(launcher: Launcher):
    launcher.bind_(BASE, extra_args())
    for lr in [1e-3, 3e-4]:
        launcher({'optim.lr': lr})
    launcher.slurm(**environment.slurm_processes(2))({'optim.lr': 1e-4})  # 2 processes, gloo on CPU
