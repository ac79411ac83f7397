"""What runs an XP of od's Dora main, and what the workflow asks of that main.

od.train (Dora's main, at the root of od/ where Dora looks for it) wraps `run_xp` in
`ODHydraMain` and binds the result in od.core.xps; the functions here reach it through
`xps.dora_main()`, so the workflow never imports the command above it. Whoever runs them in a
process of its own (od's commands, tests, notebooks) imports od.train first, as `dora` does.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import multiprocessing
import os
import sys
import typing as tp

import flashy
import hydra
import omegaconf
from dora import XP
from dora.hydra import HydraMain

from ..core import environment, xps

logger = logging.getLogger(__name__)


def resolve_device(cfg: omegaconf.DictConfig) -> None:
    """`device: auto` -> cuda when a GPU is visible, else cpu (device is not part of the XP sig)."""
    import torch
    if cfg.device == 'auto':
        cfg.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if cfg.device == 'cpu' and cfg.get('autocast', False):
        logger.info("Autocast disabled on CPU (float16 autocast is a GPU feature).")
        cfg.autocast = False
    ema = cfg.get('optim', {}).get('ema', None)
    if ema is not None and ema.get('device') == 'cuda' and cfg.device == 'cpu':
        ema.device = 'cpu'


def init_seed_and_system(cfg: omegaconf.DictConfig) -> None:
    import random

    import numpy as np
    import torch
    from audiocraft.modules.transformer import set_efficient_attention_backend

    multiprocessing.set_start_method(cfg.mp_start_method, force=True)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.num_threads)
    os.environ['MKL_NUM_THREADS'] = str(cfg.num_threads)
    os.environ['OMP_NUM_THREADS'] = str(cfg.num_threads)
    set_efficient_attention_backend(cfg.efficient_attention_backend)


def get_solver(cfg: omegaconf.DictConfig):
    """Build the solver for `cfg` in this process (batch sizes are per process under DDP)."""
    from .. import solvers
    from ..conditioners import registry

    registry.import_modules(cfg.get('registry_modules') or [])
    world = flashy.distrib.world_size()
    if cfg.dataset.batch_size % world:
        raise ValueError(f"dataset.batch_size={cfg.dataset.batch_size} must be divisible by the "
                         f"number of processes ({world}).")
    cfg.dataset.batch_size //= world
    for split in ['train', 'valid', 'evaluate', 'generate']:
        split_cfg = cfg.dataset.get(split)
        if split_cfg is not None and split_cfg.get('batch_size') is not None:
            split_cfg.batch_size //= world
    # Hydra runs us inside the XP folder (and Dora maybe in a git_save clone): every path the user
    # typed is made absolute against the directory they typed it in.
    environment.absolute_user_paths(cfg)
    return solvers.get_solver(cfg)


class ODHydraMain(HydraMain):
    """Dora's Hydra main, with a config group value that has no YAML (`dset=audio/<typo>`) told
    as one message listing the group's options (Hydra lists only the top folder, e.g. 'default'),
    and each composition done once per process.

    Dora composes twice per XP: with all its overrides, and with its config-group overrides alone
    (the base its signature is a delta from). Every XP of a grid shares that base, and each
    Hydra composition of od's config reads every YAML file of the tree again. Dora completes a
    grid's XPs in forked processes, so `dora grid` saves little; an in-process caller that builds
    the same XP again (tests, notebooks) saves it every time. Compositions are kept
    by their overrides (Hydra's output depends on the config files and the overrides only:
    interpolations resolve later) and handed out as deep copies, so a caller that edits its
    config (od's device and path fix-ups) edits its own."""

    _COMPOSED_MAX = 64

    def __init__(self, *args, **kwargs):
        self._composed: tp.Dict[tp.Tuple[str, ...], omegaconf.DictConfig] = {}  # (Dora's init composes)
        super().__init__(*args, **kwargs)

    def _get_config_noinit(self, overrides: tp.List[str] = []):
        import copy
        key = tuple(overrides)
        composed = self._composed.get(key)
        if composed is None:
            composed = self._compose(overrides)
            if len(self._composed) >= self._COMPOSED_MAX:
                self._composed.clear()
            self._composed[key] = composed
        return copy.deepcopy(composed)

    def _compose(self, overrides: tp.List[str]):
        from hydra.errors import MissingConfigException
        try:
            return super()._get_config_noinit(overrides)
        except MissingConfigException as exc:
            missing = str(exc.missing_cfg_file or '')
            if not missing or '/' not in missing and missing == self.config_name:
                raise
            message = environment.missing_config_message(missing, overrides)
            if _in_dora_cli():
                raise SystemExit(f"error: {message}") from None
            raise environment.ConfigError(message) from None


def _in_dora_cli() -> bool:
    """Whether this process is the `dora` command (which prints tracebacks for exceptions)."""
    main_module = sys.modules.get('__main__')
    spec = getattr(main_module, '__spec__', None)
    return os.path.basename(sys.argv[0] or '') == 'dora' or getattr(spec, 'name', '') == 'dora.__main__'


def _user_errors() -> tp.Tuple[tp.Type[BaseException], ...]:
    from ..conditioners.registry import PluginRequiredError
    return (environment.ConfigError, environment.MissingWeightsError, environment.AlreadyRunningError,
            PluginRequiredError)


_XP_LOCK: tp.Optional[tp.IO] = None  # held for the life of the process (the OS drops it on exit or kill)


def lock_xp(folder: 'os.PathLike[str]') -> None:
    """Take the XP's training lock, or raise AlreadyRunningError naming the process that holds it:
    two `dora run` of one XP would interleave epochs and overwrite each other's checkpoint."""
    import datetime
    import fcntl
    from pathlib import Path
    global _XP_LOCK
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / '.od-train.lock', 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or 'another process'
        handle.close()
        raise environment.AlreadyRunningError(
            f"XP {folder.name} is already being trained by {owner}: a second run of the same XP would "
            "overwrite its checkpoint. Wait for it to finish (`dora info ... --log` follows it) or stop "
            "it first, then run the same command again to resume.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {os.uname().nodename} since "
                 f"{datetime.datetime.now().isoformat(timespec='seconds')}\n")
    handle.flush()
    _XP_LOCK = handle


FAILURE_FILE = 'od_failure.json'  # in the XP folder: why the last `dora run` of it stopped (od.pipeline reads it)


def run_xp(cfg):
    """`dora run`: user errors (missing weights, manifests, plugins, a full disk) end the run with
    their message and a non-zero code instead of a traceback; anything else is od's (or
    AudioCraft's) bug, re-raised with its traceback. Either way the XP folder gets FAILURE_FILE,
    so that a tool that launched the run can tell the user which of the two it was."""
    try:
        return _run(cfg)
    except _user_errors() as exc:
        _record_failure('user', exc)
        raise SystemExit(f"error: {exc}") from None
    except Exception as exc:
        full = _full_disk_message(exc)
        if full:
            _record_failure('user', exc, full)
            raise SystemExit(full) from None
        _record_failure('bug', exc)
        raise


def _record_failure(kind: str, exc: BaseException, message: tp.Optional[str] = None) -> None:
    """Write FAILURE_FILE (kind 'user' or 'bug', the exception, the innermost frame) into the XP
    folder; nothing outside a Dora run, and never an error of its own."""
    import traceback
    try:
        import dora

        from ..core.atomic import write_json
        folder = dora.get_xp().folder
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ''
        write_json(folder / FAILURE_FILE, {
            'kind': kind, 'type': type(exc).__name__, 'message': message or str(exc), 'where': where,
            'traceback': traceback.format_exception(type(exc), exc, exc.__traceback__)[-12:]})
    except Exception:  # not inside a Dora run, or the disk is full: the exit message still says it
        pass


def _full_disk_message(exc: BaseException) -> tp.Optional[str]:
    """The message for a failure while the XP's device is full, whatever the writer raised
    (ffmpeg writing samples, torch.save, flashy's logs), or None."""
    from ..core import atomic
    try:
        import dora
        folder = dora.get_xp().folder
    except Exception:  # not inside a Dora run
        return None
    if not (isinstance(exc, atomic.DiskFullError) or getattr(exc, 'errno', None) == errno.ENOSPC
            or atomic.nearly_full(folder)):
        return None
    return (f"error: no space left on the device holding the XP folder {folder} "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}). Free some space and run the same "
            "command again: training resumes from the last complete checkpoint.")


def _run(cfg):
    resolve_device(cfg)
    init_seed_and_system(cfg)
    log_name = f'{cfg.execute_only}.log.{{rank}}' if cfg.execute_only else 'solver.log.{rank}'
    flashy.setup_logging(level=str(cfg.logging.level).upper(), log_name=log_name)
    # Dora's default init assumes nccl, which only exists on GPUs.
    flashy.distrib.init(backend='nccl' if str(cfg.device).startswith('cuda') else 'gloo')
    if flashy.distrib.is_rank_zero() and not cfg.show:
        import dora
        lock_xp(dora.get_xp().folder)
        (dora.get_xp().folder / FAILURE_FILE).unlink(missing_ok=True)  # this run's own stop replaces it
    solver = get_solver(cfg)
    if cfg.show:
        solver.show()
        return
    if cfg.execute_only:
        if not (cfg.execute_inplace or cfg.continue_from is not None):
            raise ValueError("execute_only needs continue_from=<sig_or_path> (or execute_inplace=true).")
        solver.restore(replay_metrics=False)
        solver.run_one_stage(cfg.execute_only)
        return
    return solver.run()


def get_solver_from_xp(xp: XP, override_cfg: tp.Optional[dict] = None, restore: bool = True,
                       load_best: bool = True, ignore_state_keys: tp.Sequence[str] = (),
                       disable_fsdp: bool = True):
    """Solver of an existing XP, restored from its last checkpoint (for export, notebooks)."""
    cfg = xp.cfg
    if override_cfg is not None:
        cfg = omegaconf.OmegaConf.merge(cfg, omegaconf.DictConfig(override_cfg))
    ignore = list(ignore_state_keys)
    if disable_fsdp and cfg.fsdp.use:
        cfg.fsdp.use = False
        ignore += ['model', 'ema', 'best_state']
    resolve_device(cfg)
    try:
        with xp.enter():
            solver = get_solver(cfg)
            if restore:
                solver.restore(load_best=load_best, ignore_state_keys=ignore)
        return solver
    finally:
        hydra.core.global_hydra.GlobalHydra.instance().clear()


@contextlib.contextmanager
def dora_dir_at(folder: 'os.PathLike[str]'):
    """XPs of this process live under `folder` inside the block (experiments, tests, benchmarks
    that keep their XPs in a work folder); od.core.xps follows, since it reads main.dora.dir."""
    from pathlib import Path
    main = xps.dora_main()
    previous, main.dora.dir = main.dora.dir, Path(folder)
    try:
        yield main.dora.dir
    finally:
        main.dora.dir = previous


def build_solver(argv: tp.Sequence[str]):
    """The solver `dora run <argv>` would build, in this process (tests, benchmarks, notebooks)."""
    xp = xps.dora_main().get_xp(list(argv))
    resolve_device(xp.cfg)
    with xp.enter():
        return get_solver(xp.cfg)


def compose(overrides: tp.Sequence[str]) -> omegaconf.DictConfig:
    """The config `dora run <overrides>` composes, unresolved: for callers that read the model's
    part before a dataset exists (preflight checks, starting checkpoints); Dora's `main.get_xp`
    resolves every value, the mandatory `datasource.*` of a dset included."""
    return xps.dora_main()._get_config(list(overrides))


def get_solver_from_sig(sig: str, *args, **kwargs):
    """Solver of the XP `logs/xps/<sig>`; see `get_solver_from_xp`."""
    return get_solver_from_xp(xps.dora_main().get_xp_from_sig(sig), *args, **kwargs)


def get_xp(argv: tp.Sequence[str]) -> XP:
    """The XP `dora run <argv>` would run (its signature, folder and resolved config)."""
    return xps.dora_main().get_xp(list(argv))


def get_xp_from_sig(sig: str) -> XP:
    return xps.dora_main().get_xp_from_sig(sig)
