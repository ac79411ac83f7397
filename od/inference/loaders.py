"""Where whole MusicGen models come from, decided once for training and inference alike.

`load_model` is the one loader of whole MusicGen models (od exports, make_ckpt outputs, Dora
checkpoints, upstream weights); compression models are resolved in od/encoders/compression.py.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

from ..solvers.model_files import (  # noqa: F401  (the model-file API, read here by inference callers)
    COMPRESSION_FILE,
    LM_FILE,
    complete_checkpoint,
    load_lm_state,
    locate_model,
    read_base,
    read_config,
    read_model_files,
)


def build_lm(cfg_dict: dict, state: dict, device: str = 'cpu', cache: bool = False,
             plugins: tp.Sequence[str] = (), source: tp.Any = 'this model'):
    """The LM of `cfg_dict` (conditioners from od's registry) holding `state` (strict); an LM
    trained with LoRA gets its adapters (unmerged; `od.export --merge-lora` folds them in).

    `cfg_dict` was read from a file (`source`): the modules its `registry_modules` lists are
    never imported; `plugins` (the user's own choice) are, and every conditioner must then be
    registered (else PluginRequiredError says which plugin to pass).
    """
    from omegaconf import OmegaConf

    from ..conditioners import registry
    from ..solvers import lora
    cfg = OmegaConf.create(cfg_dict)
    cfg.device = str(device)
    cfg.dtype = 'float32' if str(device) == 'cpu' else 'float16'
    for spec in (cfg.get('conditioners') or {}).values():
        args = spec.get(spec.get('model')) if hasattr(spec, 'get') else None
        if args is not None and 'use_cache' in args:
            args.use_cache = cache  # caches of frozen encoders: written at inference only if asked
    registry.import_modules(plugins)
    registry.require_registered(cfg, source)
    lm = new_lm(cfg, int(cfg.get('seed', 0)))
    settings = lora.settings_from_cfg(cfg)
    if settings is not None:  # trained with LoRA: the same adapters, then its tensors
        lora.apply(lm, settings)  # adapters on the device and dtype of the layers they wrap
    lm.load_state_dict(state)
    lm.cfg = cfg
    return lm.eval()


def new_lm(cfg: tp.Any, seed: int):
    """A freshly initialised LM of `cfg` (conditioners from the registry), built under `seed`
    without touching the caller's random stream: the same weights wherever it is built."""
    import torch
    from audiocraft.models import builders

    from ..conditioners import hooks
    hooks.install()  # the registry's LM builder (od/conditioners/hooks.py)
    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        return builders.get_lm_model(cfg)


def load_model(spec: str, device: tp.Optional[str] = None, cache: bool = False,
               plugins: tp.Sequence[str] = ()):
    """One loader for od exports, make_ckpt outputs, Dora checkpoints and upstream MusicGen.

    `plugins`: modules to import first because they register conditioners the model needs (the
    user's choice: a model file never makes od import anything, see od.conditioners.registry).

    Returns an `od.inference.musicgen.ODMusicGen` whose conditioners come from od's registry.
    A `.th` checkpoint has no packaged compression model: it is rebuilt from the config's
    `compression_model_checkpoint` under the XP seed, exactly as the solver built it.
    """
    path = locate_model(spec)
    return assemble_model(str(spec), path, *read_model_files(path), device=device, cache=cache, plugins=plugins)


def assemble_model(name: str, path: Path, state: dict, cfg: dict, compression_pkg: tp.Optional[dict],
                   device: tp.Optional[str] = None, cache: bool = False, plugins: tp.Sequence[str] = ()):
    """The ODMusicGen of files already read by `read_model_files` (for callers that check the
    config before paying for the build, e.g. od.inference.hf_export)."""
    import torch

    from ..encoders.compression import build_compression_model, load_compression_package
    from .musicgen import ODMusicGen
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if path.is_dir() and compression_pkg is None:
        raise FileNotFoundError(f"{path / COMPRESSION_FILE} is missing: an export holds both files.")
    lm = build_lm(cfg, state, device, cache=cache, plugins=plugins, source=path)
    if compression_pkg is not None:
        compression = load_compression_package(compression_pkg, device)
    else:
        compression = build_compression_model(cfg['compression_model_checkpoint'],
                                              seed=int(cfg.get('seed', 0)), device=device)
    return ODMusicGen(name, compression, lm)
