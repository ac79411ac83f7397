"""Dora/Hydra entry point. From the repository root:

    dora run solver=musicgen/debug dset=audio/example
    dora run -d --ddp_workers 2 solver=musicgen/debug dset=audio/example

Dora finds this module because `od` is the one package in the repo root with a `train.py`, and
its grids in od.grids for the same reason: the module stays here. It sets up od's environment,
builds Dora's main over od.workflow.runs (what runs an XP) and binds it in od.core.xps, where the
workflow reaches it. XPs land in `logs/xps/<signature>/`.
"""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before AudioCraft is imported (od.conditioners imports it)

import sys
import warnings

from audiocraft.environment import AudioCraftEnvironment
from audiocraft.utils.cluster import get_slurm_parameters
from hydra.errors import Hydra14MigrationWarning

from .conditioners import hooks
from .core import xps
from .workflow import runs
from .workflow.runs import get_solver_from_sig, get_solver_from_xp  # noqa: F401  (AudioCraft calls them on `audiocraft.train`)

# Like AudioCraft, od keeps Hydra 1.1 semantics (version_base='1.1') that Dora relies on.
warnings.filterwarnings('ignore', category=Hydra14MigrationWarning)


def main(cfg):
    """`dora run`: od.workflow.runs.run_xp (user errors end with their message, od's bugs with
    their traceback; either way the XP folder says which it was)."""
    return runs.run_xp(cfg)


# Dora pickles its main as '<module>.<function name>' and reloads that attribute: the function is
# named `main` and the module attribute `main` is the ODHydraMain wrapping it.
main = runs.ODHydraMain(main, config_name='config', config_path='../config', version_base='1.1')
try:  # a clear error for an AUDIOCRAFT_CLUSTER the team file lacks (AudioCraft's is a bare key error)
    environment.cluster_name()
except environment.ConfigError as exc:
    raise SystemExit(f"error: {exc}") from None
main.dora.dir = AudioCraftEnvironment.get_dora_dir()
xps.bind(main)  # library readers of XPs (od.core.xps) follow main.dora.dir from now on
main._base_cfg.slurm = get_slurm_parameters(main._base_cfg.slurm)
# The team file's cluster entry (AUDIOCRAFT_CLUSTER picks it): partition, GPUs, CPUs, memory, time.
environment.apply_cluster_slurm(main._base_cfg.slurm)


# od's process-wide hooks (od/conditioners/hooks.py), this module becoming `audiocraft.train`: AudioCraft resolves
# `//sig/...` checkpoints and `continue_from` through `audiocraft.train.main`, whose module cannot
# import without upstream's config dir (not installed by pip), and od's Dora main owns the XPs.
hooks.install(dora_main_module=sys.modules[__name__])

if __name__ == '__main__':
    main()
