"""Model files: where a MusicGen's LM and codec tensors are (exports, make_ckpt outputs, Dora
checkpoints, `//sig/`, hub ids) and how they are read, trained-only checkpoints completed from
their frozen base. Solvers read them to resume and continue; od.inference.loaders builds models
from them.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

from ..core.environment import resolve_reference
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
    from ..core.environment import hf_snapshot
    spec = str(spec)
    if spec.startswith('//sig/'):
        from ..core.xps import sig_checkpoint
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

    from ..core.safe_load import torch_load
    path = locate_model(spec)
    file = path / LM_FILE if path.is_dir() else path
    pkg = torch_load(file, 'checkpoint', mmap=True)
    if not isinstance(pkg, dict) or 'xp.cfg' not in pkg:
        raise ValueError(f"{file} has no xp.cfg: not a MusicGen checkpoint od can read the architecture of.")
    return OmegaConf.to_container(OmegaConf.create(pkg['xp.cfg']), resolve=False)


def read_base(source: str) -> tp.Dict[str, tp.Any]:
    """The LM weights of a frozen base (`//pretrained/<id>`, an export, a Dora or make_ckpt
    checkpoint) through this loader; a base that is itself trained-only is completed first."""
    from .frozen_base import PRETRAINED
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
    from . import frozen_base
    return frozen_base.complete(pkg, read_base) if isinstance(pkg, dict) else pkg


def load_lm_state(spec: str) -> tp.Dict[str, tp.Any]:
    """LM state dict of any model `spec` (see `locate_model`), trained-only checkpoints completed."""
    return read_model_files(locate_model(spec))[0]


def _torch_load(file: Path) -> tp.Any:
    from ..core.safe_load import torch_load
    return torch_load(file, 'checkpoint')
