"""Where whole MusicGen models come from, decided once for training and inference alike.

`load_model` is the one loader of whole MusicGen models (od exports, make_ckpt outputs, Dora
checkpoints, upstream weights); compression models are resolved in od/encoders/compression.py.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

from ..environment import resolve_reference
from ..encoders.compression import EXPORTED_COMPRESSION

# ---- whole models: exports, make_ckpt outputs, Dora checkpoints, upstream weights --------------
LM_FILE = 'state_dict.bin'                 # AudioCraft's export format (od.export writes it too)
COMPRESSION_FILE = EXPORTED_COMPRESSION


def locate_model(spec: str) -> Path:
    """File or folder holding the model `spec`.

    `spec`: an export folder (state_dict.bin + compression_state_dict.bin), a `.th` file
    (make_ckpt output or a Dora checkpoint), `//sig/<sig>` (an XP's checkpoint), a
    `//reference/...` path, or a hub id such as `facebook/musicgen-small` (reference dir, then
    the Hugging Face cache; never downloaded).
    """
    from ..environment import hf_snapshot
    spec = str(spec)
    if spec.startswith('//sig/'):
        from ..xps import sig_checkpoint
        return sig_checkpoint(spec)
    path = resolve_reference(spec)
    if path.exists():
        if path.is_dir() and not (path / LM_FILE).is_file():
            raise FileNotFoundError(f"{path} is a folder without {LM_FILE}: not a model export.")
        return path
    if spec.startswith(('/', '.', '~')) or spec.endswith(('.th', '.bin', '.pt')):
        raise FileNotFoundError(f"Model not found: {path}")
    return hf_snapshot(spec, required=(LM_FILE, COMPRESSION_FILE))


def read_model_files(path: Path) -> tp.Tuple[dict, dict, tp.Optional[dict]]:
    """(LM state, LM config as a dict, compression package or None) of a located model.

    Raises ValueError for a file that is truncated, not a checkpoint, or not a MusicGen LM's.
    """
    import torch
    from omegaconf import OmegaConf

    file = path / LM_FILE if path.is_dir() else path
    pkg = complete_checkpoint(_torch_load(file))  # trained tensors only: add the frozen base
    best = pkg.get('fsdp_best_state') or pkg.get('best_state') if isinstance(pkg, dict) else None
    if isinstance(best, dict) and isinstance(best.get('model'), dict):
        best = best['model']            # a Dora / make_ckpt checkpoint
    if not isinstance(best, dict) or not best or 'xp.cfg' not in pkg \
            or not all(isinstance(v, torch.Tensor) for v in best.values()):
        raise ValueError(f"{file} is not a MusicGen LM checkpoint (needs best_state LM weights and xp.cfg).")
    cfg = OmegaConf.to_container(OmegaConf.create(pkg['xp.cfg']), resolve=False)
    compression = _torch_load(path / COMPRESSION_FILE) if (path / COMPRESSION_FILE).is_file() else None
    return best, cfg, compression


def read_config(spec: str) -> dict:
    """The LM config (`xp.cfg`, as a dict) stored with the model `spec`, without reading its
    tensors (the file is memory-mapped): cheap even for a multi-GB checkpoint."""
    from omegaconf import OmegaConf

    from ..safe_load import torch_load
    path = locate_model(spec)
    file = path / LM_FILE if path.is_dir() else path
    pkg = torch_load(file, 'checkpoint', mmap=True)
    if not isinstance(pkg, dict) or 'xp.cfg' not in pkg:
        raise ValueError(f"{file} has no xp.cfg: not a MusicGen checkpoint od can read the architecture of.")
    return OmegaConf.to_container(OmegaConf.create(pkg['xp.cfg']), resolve=False)


def read_base(source: str) -> tp.Dict[str, tp.Any]:
    """The LM weights of a frozen base (`//pretrained/<id>`, an export, a Dora or make_ckpt
    checkpoint) through this loader; a base that is itself trained-only is completed first."""
    from ..solvers.frozen_base import PRETRAINED
    spec = source[len(PRETRAINED):] if source.startswith(PRETRAINED) else source
    try:
        path = locate_model(spec)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"This checkpoint keeps only its trained tensors; the frozen LM comes from {source}, which is "
            f"gone ({exc}). Put that checkpoint back, or retrain from another base.") from exc
    state, _, _ = read_model_files(path)
    return state


def complete_checkpoint(pkg: tp.Any) -> tp.Any:
    """A checkpoint package whose trained-only LM states are completed from their named base."""
    from ..solvers import frozen_base
    return frozen_base.complete(pkg, read_base) if isinstance(pkg, dict) else pkg


def load_lm_state(spec: str) -> tp.Dict[str, tp.Any]:
    """LM state dict of any model `spec` (see `locate_model`), trained-only checkpoints completed."""
    return read_model_files(locate_model(spec))[0]


def _torch_load(file: Path) -> tp.Any:
    from ..safe_load import torch_load
    return torch_load(file, 'checkpoint')


def build_lm(cfg_dict: dict, state: dict, device: str = 'cpu', cache: bool = False,
             plugins: tp.Sequence[str] = (), source: tp.Any = 'this model'):
    """The LM of `cfg_dict` (conditioners from od's registry) holding `state` (strict); an LM
    trained with LoRA gets its adapters (unmerged; `od.export --merge-lora` folds them in).

    `cfg_dict` was read from a file (`source`): the modules its `registry_modules` lists are
    never imported; `plugins` (the user's own choice) are, and every conditioner must then be
    registered (else PluginRequiredError says which plugin to pass).
    """
    from omegaconf import OmegaConf

    from .. import registry
    from ..solvers import lora
    cfg = OmegaConf.create(cfg_dict)
    cfg.device = str(device)
    cfg.dtype = 'float32' if str(device) == 'cpu' else 'float16'
    for spec in (cfg.get('conditioners') or {}).values():
        args = spec.get(spec.get('model')) if hasattr(spec, 'get') else None
        if args is not None and 'use_cache' in args:
            args.use_cache = cache  # caches of frozen encoders: written at inference only if asked
    registry.setup(plugins)
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

    from .. import registry
    registry.install()
    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        return builders.get_lm_model(cfg)


def load_model(spec: str, device: tp.Optional[str] = None, cache: bool = False,
               plugins: tp.Sequence[str] = ()):
    """One loader for od exports, make_ckpt outputs, Dora checkpoints and upstream MusicGen.

    `plugins`: modules to import first because they register conditioners the model needs (the
    user's choice: a model file never makes od import anything, see od.registry).

    Returns an `od.inference.musicgen.ODMusicGen` whose conditioners come from od's registry.
    A `.th` checkpoint has no packaged compression model: it is rebuilt from the config's
    `compression_model_checkpoint` under the XP seed, exactly as the solver built it.
    """
    from ..environment import setup
    setup()
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
