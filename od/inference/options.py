"""Options shared by od's generation commands (od.generate, od.clip, od.export): AudioCraft's
generation parameters, --plugin, --denoise, and loading the model they name."""
from __future__ import annotations

import argparse
import typing as tp


def add_plugin_arg(parser: argparse.ArgumentParser) -> None:
    """--plugin: modules the user trusts that register conditioners a model needs."""
    parser.add_argument('--plugin', action='append', default=[], metavar='MODULE',
                        help="import MODULE first: it registers a conditioner the model needs (a model "
                             "file never makes od import code; repeatable)")


def add_generation_args(parser: argparse.ArgumentParser, default_model: tp.Optional[str] = None) -> None:
    """--model, --device, --plugin and AudioCraft's generation parameters (MusicGen.set_generation_params)."""
    parser.add_argument('--model', default=default_model, required=default_model is None,
                        help="od export folder, make_ckpt/.th file, //sig/<sig>, or a hub id such as "
                             "facebook/musicgen-small (HF cache / reference dir)"
                             + (" (default: %(default)s)" if default_model else ''))
    group = parser.add_argument_group('generation (AudioCraft MusicGen parameters)')
    group.add_argument('--cfg', type=float, default=3.0, dest='cfg_coef',
                       help="classifier-free guidance coefficient (default: %(default)s)")
    group.add_argument('--top-k', type=int, default=250, help="sample among the k most likely codes (default: %(default)s)")
    group.add_argument('--top-p', type=float, default=0.0, help="nucleus sampling; 0 uses top-k (default: %(default)s)")
    group.add_argument('--temperature', type=float, default=1.0, help="softmax temperature (default: %(default)s)")
    group.add_argument('--greedy', action='store_true', help="argmax decoding instead of sampling")
    group.add_argument('--extend-stride', type=float, default=None,
                       help="seconds added per chunk beyond the model's max duration (default: 18, or 60%% "
                            "of max duration for short-segment models)")
    group.add_argument('--seed', type=int, default=0, help="random seed (default: %(default)s)")
    group.add_argument('--device', default=None, help="cpu or cuda (default: cuda when available)")
    add_plugin_arg(parser)


def add_denoise_args(parser: argparse.ArgumentParser) -> None:
    """--denoise [SPEC] and --denoise-strength (od/data/denoise.py)."""
    from ..data.denoise import DEFAULT_STRENGTH
    group = parser.add_argument_group('clean-up of the generated audio (od/data/denoise.py)')
    group.add_argument('--denoise', nargs='?', const='spectral', default=None, metavar='SPEC',
                       help="denoise each output, keeping the original as <name>.raw.wav: 'spectral' (the "
                            "default with no value: noisereduce spectral gating), 'stationary', or a path to "
                            "learned Demucs denoiser weights (facebookresearch's `denoiser` state dict)")
    group.add_argument("--denoise-strength", type=float, default=DEFAULT_STRENGTH,
                       help="0..1: spectral gating's prop_decrease, or the learned model's wet share "
                            "(default %(default)s: benchmarks/denoise_snr.py)")


def build_denoiser_for(args: argparse.Namespace):
    """The denoiser of `args` (None without --denoise); built before any model loads."""
    from ..data.denoise import build_denoiser
    return build_denoiser(args.denoise, args.denoise_strength, device=args.device or 'cpu')


def load_for_generation(args: argparse.Namespace, duration: float, cache: bool = False):
    """The model of `args.model` with the generation parameters of `args` set (`cache`: its
    frozen encoders read and write their embedding caches)."""
    from . import load
    model = load(args.model, device=args.device, plugins=args.plugin, cache=cache)
    model.set_generation_params(use_sampling=not args.greedy, top_k=args.top_k, top_p=args.top_p,
                                temperature=args.temperature, duration=duration, cfg_coef=args.cfg_coef,
                                extend_stride=args.extend_stride)
    return model
