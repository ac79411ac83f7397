"""Where Dora keeps XPs, for every reader of them: library code never imports `od.train`.

`od.train` binds its Dora main here when it is imported (`bind`); until then (a notebook that
only loads a model) the directory comes from the team config / `AUDIOCRAFT_DORA_DIR`, exactly
what `od.train` would use. `//sig/<sig>` specs are resolved in one place (`sig_checkpoint`).
"""
from __future__ import annotations

import re
import typing as tp
from pathlib import Path

SIG = re.compile(r'^[0-9a-f]{8}$')  # a Dora signature: 8 hex digits
SIG_PREFIX = '//sig/'
_main: tp.Any = None


def bind(main: tp.Any) -> None:
    """Called by od.train: its `main.dora.dir` (which tests and experiments may point
    elsewhere) is then the answer."""
    global _main
    _main = main


def dora_dir() -> Path:
    if _main is not None:
        return Path(_main.dora.dir)
    from .environment import use_team_config
    use_team_config()
    from audiocraft.environment import AudioCraftEnvironment
    return Path(AudioCraftEnvironment.get_dora_dir())


def xps_root() -> Path:
    return dora_dir() / 'xps'


def xp_folder(sig: str) -> Path:
    """The folder of XP `sig`, refused unless `sig` is a signature (no path can be smuggled in)."""
    if not isinstance(sig, str) or not SIG.match(sig):
        raise ValueError(f"{sig!r} is not a Dora XP signature (8 hex digits)")
    return xps_root() / sig


def sig_checkpoint(spec: str) -> Path:
    """`//sig/<sig>` -> that XP's checkpoint.th, or FileNotFoundError saying where it looked."""
    sig = spec[len(SIG_PREFIX):] if spec.startswith(SIG_PREFIX) else spec
    path = xp_folder(sig) / 'checkpoint.th'
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint for {SIG_PREFIX}{sig}: {path} does not exist "
                                "(has the XP finished an epoch? `dora info` lists XPs).")
    return path


def dora_main() -> tp.Any:
    """od's Dora main (od.train's `main`): what composes configs and finds XPs for the workflow,
    which may not import the command above it. od.train binds it on import."""
    if _main is None:
        raise RuntimeError("od's Dora main is not loaded in this process: `import od.train` first "
                           "(od's commands and `dora` do)")
    return _main
