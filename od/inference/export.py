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

import argparse
import datetime
import json
import sys
import typing as tp
from pathlib import Path

from ..atomic import DiskFullError
from .generation import add_plugin_arg
from ..environment import ROOT, MissingWeightsError

DEFAULT_OUT = ROOT / 'checkpoints'


def checkpoint_of(sig: tp.Optional[str] = None, xp: tp.Optional[str] = None,
                  checkpoint: tp.Optional[str] = None) -> Path:
    """The checkpoint file named by exactly one of --sig / --xp / --checkpoint."""
    if sum(x is not None for x in (sig, xp, checkpoint)) != 1:
        raise ValueError("give exactly one of --sig, --xp or --checkpoint")
    if sig is not None:
        from ..xps import sig_checkpoint
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

    from ..solvers import lora
    from ..encoders.compression import build_compression_model, compression_package
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

    from .. import atomic
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


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.export', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m od.export --sig 2e5708a4 --name mymodel\n"
               "  python -m od.export --checkpoint logs/xps/2e5708a4/checkpoint.th --name mymodel --overwrite\n"
               "  python -m od.export --sig 2e5708a4 --name mymodel_merged --merge-lora\n"
               "  python -m od.export --sig 2e5708a4 --name mymodel-hf --format transformers   # T5 text models")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--sig', help="Dora signature of the XP (logs/xps/<sig>/)")
    source.add_argument('--xp', help="an XP folder holding checkpoint.th")
    source.add_argument('--checkpoint', help="a checkpoint.th file (with --format transformers also an od export "
                                             "folder or a hub id such as facebook/musicgen-small)")
    parser.add_argument('--name', help="export name (default: the signature or folder name)")
    parser.add_argument('--out', default=str(DEFAULT_OUT), help="root folder (default: %(default)s)")
    parser.add_argument('--overwrite', action='store_true', help="replace an existing export of that name")
    parser.add_argument('--merge-lora', action='store_true',
                        help="fold LoRA adapters into the weights: plain AudioCraft weights, same tokens")
    add_plugin_arg(parser)
    hf = parser.add_argument_group("--format transformers (T5 text models; see od/inference/hf_export.py)")
    hf.add_argument('--format', choices=('audiocraft', 'transformers'), default='audiocraft',
                    help="audiocraft: od's loaders (default); transformers: a folder that "
                         "MusicgenForConditionalGeneration / AutoProcessor.from_pretrained load")
    hf.add_argument('--duration', type=float, default=None,
                    help="generation_config length in seconds (default: 10, or the training segment if shorter)")
    hf.add_argument('--top-k', type=int, default=None, help="generation_config top_k (default: 250)")
    hf.add_argument('--cfg', type=float, default=None, dest='cfg_coef',
                    help="generation_config guidance_scale (default: the model's inference_coef, else 3)")
    args = parser.parse_args(argv)
    from ..environment import setup
    setup()
    try:
        if args.format == 'transformers' and args.checkpoint and not Path(args.checkpoint).is_file():
            # any od.inference.load spec: an od export folder, or upstream MusicGen by hub id
            out = Path(args.out) / (args.name or Path(args.checkpoint).name)
            return _export_transformers(args.checkpoint, out, args)
        checkpoint = checkpoint_of(args.sig, args.xp, args.checkpoint)
        name = args.name or args.sig or checkpoint.parent.name
        if args.format == 'transformers':
            return _export_transformers(checkpoint, Path(args.out) / name, args)
        out = export(checkpoint, name, args.out, args.overwrite, plugins=args.plugin, merge_lora=args.merge_lora)
    except (ValueError, FileNotFoundError, FileExistsError, MissingWeightsError, DiskFullError) as exc:
        print(f"error: {exc}\nNothing was written.", file=sys.stderr)
        return 2
    meta = json.loads((out / 'export.json').read_text())
    print(f"exported {checkpoint} -> {out}/ ({meta['parameters']:,} LM parameters, "
          f"{meta['sample_rate']} Hz compression model)")
    for attr, info in meta['conditioners'].items():
        refs = {k: v for k, v in info.items() if k != 'model'}
        if refs:
            print(f"  conditioner '{attr}' ({info['model']}) loads frozen weights from {refs}")
    print(f"use it: python -m od.clip --model {out} --videos <video.mp4>   or   "
          f"python -m od.generate 'a prompt' --model {out}")
    return 0


def _export_transformers(checkpoint: tp.Union[str, Path], out: Path, args: argparse.Namespace) -> int:
    from .hf_export import export_transformers
    info = export_transformers(checkpoint, out, args.overwrite, args.duration, args.top_k, args.cfg_coef)
    check = info['logits_check']
    print(f"exported {checkpoint} -> {out}/ (transformers MusicgenForConditionalGeneration; decoder logits match "
          f"od's LM within {max(check['max_abs_diff_prompt'], check['max_abs_diff_null']):.2e})")
    print(f"use it: MusicgenForConditionalGeneration.from_pretrained('{out}') and AutoProcessor.from_pretrained"
          f"('{out}'); generation_config: {info['duration_s']:g} s, top_k={info['generation']['top_k']}, "
          f"guidance_scale={info['generation']['guidance_scale']:g}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
