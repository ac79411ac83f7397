"""The `export` command: argument parsing for od.inference.export, whose docstring is this command's help text."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import json
import sys
import typing as tp
from pathlib import Path

from .core.atomic import DiskFullError
from .core.environment import MissingWeightsError
from .inference import export as library
from .inference.export import DEFAULT_OUT, checkpoint_of, export
from .inference.options import add_plugin_arg


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.export', description=library.__doc__.split('\n\n')[0],
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
    from .inference.hf_export import export_transformers
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
