"""Export a trained XP to inference weights: `checkpoints/<name>/`.

    python -m od.export --sig 2e5708a4 --name mymodel
    python -m od.export --xp logs/xps/2e5708a4 --name mymodel
    python -m od.export --checkpoint path/to/checkpoint.th --name mymodel

writes `checkpoints/<name>/state_dict.bin` (the LM's best state — the EMA weights when EMA is
configured, since AudioCraft records the best state under EMA — and the resolved config that
rebuilds it, conditioners included; AudioCraft's export format; an LM trained with LoRA keeps
its adapters beside the base weights, or `--merge-lora` folds them in: plain AudioCraft weights)
and `compression_state_dict.bin`
(the compression model's weights with what rebuilds it, see od/encoders/compression.py), plus
`export.json` (where it came from, which frozen encoders it needs). Then:

    python -m od.clip --model checkpoints/mymodel --videos my.mp4

Before anything is written the LM is rebuilt from the config and loaded strictly: a truncated,
partial or foreign checkpoint is refused with the reason and nothing is written. The folder is
written beside its final place and renamed into it, so a killed export leaves no half folder.
"""
from __future__ import annotations

import datetime
import json
import typing as tp
from pathlib import Path

from ..core.environment import ROOT

DEFAULT_OUT = ROOT / 'checkpoints'


def checkpoint_of(sig: tp.Optional[str] = None, xp: tp.Optional[str] = None,
                  checkpoint: tp.Optional[str] = None) -> Path:
    """The checkpoint file named by exactly one of --sig / --xp / --checkpoint."""
    if sum(x is not None for x in (sig, xp, checkpoint)) != 1:
        raise ValueError("give exactly one of --sig, --xp or --checkpoint")
    if sig is not None:
        from ..core.xps import sig_checkpoint
        return sig_checkpoint(sig)
    elif xp is not None:
        path = Path(xp) / 'checkpoint.th'
    else:
        path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}" + (
            " (has the XP finished an epoch? `dora info` lists XPs)" if checkpoint is None else ''))
    return path


def build_export(checkpoint: Path, plugins: tp.Sequence[str] = (),
                 merge_lora: bool = False) -> tp.Tuple[dict, dict, dict]:
    """(state_dict.bin package, compression package, export.json content), checked to load.

    `plugins`: modules (the user's choice) registering conditioners the checkpoint needs.
    `merge_lora`: fold LoRA adapters into the weights (od/solvers/lora.py) and drop them."""
    from audiocraft import __version__
    from omegaconf import OmegaConf

    from ..encoders.compression import build_compression_model, compression_package
    from ..solvers import lora
    from .loaders import build_lm, read_model_files

    state, cfg, _ = read_model_files(checkpoint)
    if cfg.get('solver') not in ('musicgen', 'lm') and cfg.get('lm_model') is None:
        raise ValueError(f"{checkpoint} is a '{cfg.get('solver')}' checkpoint, not a MusicGen LM.")
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
    except Exception:  # an unresolvable interpolation (e.g. an env var): keep it as written
        resolved = cfg
    try:
        lm = build_lm(resolved, state, 'cpu', plugins=plugins, source=checkpoint)  # strict: refuses missing/unexpected/misshapen tensors
    except RuntimeError as exc:
        raise ValueError(f"{checkpoint} does not load into the model its config describes "
                         f"(partial or foreign checkpoint): {str(exc)[:600]}") from exc
    adapters = getattr(lm, 'od_lora', None)
    if merge_lora:
        if adapters is None:
            raise ValueError(f"{checkpoint} has no LoRA adapters to merge (drop --merge-lora).")
        lora.merge(lm)
        resolved = lora.without_lora(resolved)
    spec = str(resolved['compression_model_checkpoint'])
    compression = build_compression_model(spec, seed=int(resolved.get('seed', 0)))
    lm_pkg = {'best_state': {k: v.detach().cpu() for k, v in lm.state_dict().items()},
              'xp.cfg': OmegaConf.to_yaml(OmegaConf.create(resolved)),
              'version': __version__, 'exported': True}
    encoders = {name: c.get(c.get('model'), {}) for name, c in (resolved.get('conditioners') or {}).items()
                if isinstance(c, dict) and 'model' in c}
    meta = {'source': str(checkpoint.resolve()), 'exported_at': datetime.datetime.now().isoformat(timespec='seconds'),
            'parameters': sum(v.numel() for v in lm_pkg['best_state'].values()),
            'lora': ('merged' if merge_lora else adapters.describe()) if adapters is not None else None,
            'compression_model_checkpoint': spec, 'sample_rate': int(compression.sample_rate),
            'segment_duration': resolved.get('dataset', {}).get('segment_duration'),
            'conditioners': {name: {'model': resolved['conditioners'][name]['model'], **_encoder_names(args)}
                             for name, args in encoders.items()}}
    return lm_pkg, compression_package(compression, spec), meta


def _encoder_names(args: dict) -> dict:
    """The pretrained-weight references of a conditioner's arguments (what the export needs)."""
    return {k: v for k, v in (args or {}).items() if k in ('name', 'pretrained', 'checkpoint') and v}


def write_export(out: Path, lm_pkg: dict, compression_pkg: dict, meta: dict, overwrite: bool = False) -> Path:
    """Write the three files into a temporary sibling folder, then rename it into place."""
    import torch

    from ..core import atomic
    out = Path(out)
    atomic.clean_stale(out.parent)  # what killed exports left behind
    # Folder and files get the umask's modes (shared team folders), and appear only when whole.
    with atomic.atomic_dir(out, overwrite=overwrite) as tmp:
        torch.save(lm_pkg, tmp / 'state_dict.bin')
        torch.save(compression_pkg, tmp / 'compression_state_dict.bin')
        (tmp / 'export.json').write_text(json.dumps(meta, indent=2) + '\n')
    return out


def export(checkpoint: Path, name: str, out_root: tp.Union[str, Path] = DEFAULT_OUT,
           overwrite: bool = False, plugins: tp.Sequence[str] = (), merge_lora: bool = False) -> Path:
    """Library entry point: `checkpoint.th` -> `<out_root>/<name>/`."""
    lm_pkg, compression_pkg, meta = build_export(Path(checkpoint), plugins, merge_lora)
    return write_export(Path(out_root) / name, lm_pkg, compression_pkg, meta, overwrite)
