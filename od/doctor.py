"""Self-check of an od environment (versions, imports that must work, librosa's numba cache
loads, GPU or not), and the memory plan of a training run before it starts.

    python -m od.doctor
    python -m od.doctor --plan solver=musicgen/finetune model/lm/model_scale=small conditioner=clipemb2music
    python -m od.doctor --plan --gpu-memory 24 solver=musicgen/finetune_lora model/lm/model_scale=medium
"""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import importlib
import sys
import typing as tp


def parse_args(argv: tp.Optional[tp.Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m od.doctor', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m od.doctor\n"
               "  python -m od.doctor --plan solver=musicgen/finetune model/lm/model_scale=small conditioner=clipemb2music\n"
               "  python -m od.doctor --plan --gpu-memory 24 solver=musicgen/finetune_lora model/lm/model_scale=medium\n"
               "The plan's lines are also printed at the start of every `dora run` of a MusicGen solver.")
    parser.add_argument('--plan', action='store_true',
                        help="print the memory plan of the run the dora overrides describe (see od/solvers/memory_plan.py)")
    parser.add_argument('--gpu-memory', type=float, default=None, metavar='GIB',
                        help="compare against a GPU of this many GiB (default: the visible GPU)")
    parser.add_argument('overrides', nargs='*', help="dora run overrides, e.g. solver=musicgen/finetune")
    args = parser.parse_args(argv)
    if args.overrides and not args.plan:
        parser.error("overrides are read only with --plan")
    return args


def print_plan(overrides: tp.Sequence[str], gpu_memory: tp.Optional[float]) -> int:
    """Compose the run's config as `dora run` would and print its memory plan."""
    import torch

    import od.train

    from .solvers import memory_plan
    try:
        cfg = od.train.main.get_xp(list(overrides)).cfg
    except Exception as exc:  # Hydra's composition errors name the bad override
        print(f"error: these overrides do not compose: {str(exc).splitlines()[0]} (the plan reads the "
              "same config as `dora run`: give the run's overrides, dset=audio/<name> included).", file=sys.stderr)
        return 2
    if cfg.get('solver') not in ('musicgen', 'lm', 'textual_inversion'):
        print(f"error: --plan covers MusicGen solvers (solver=musicgen/...), not {cfg.get('solver')}.", file=sys.stderr)
        return 2
    gpu = gpu_memory is not None or torch.cuda.is_available()
    result = memory_plan.plan(cfg, device_is_gpu=gpu)
    if gpu_memory is not None:
        device, name = int(gpu_memory * memory_plan.GiB), f"a {gpu_memory:g} GiB GPU"
    elif torch.cuda.is_available():
        device, name = torch.cuda.get_device_properties(0).total_memory, torch.cuda.get_device_name(0)
    else:
        device, name = None, ''
    for line in memory_plan.describe(result, device, name):
        print(f"[od plan] {line}")
    if device:
        fix = memory_plan.suggestion(cfg, result, device)
        if fix:
            print(f"[od plan] to fit: {fix}")
    else:
        print("[od plan] no GPU visible: pass --gpu-memory 24 to compare with a 24 GiB card")
    return 0


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.plan:
        return print_plan(args.overrides, args.gpu_memory)
    from . import __version__
    problems = []
    versions = {'od': __version__, 'python': sys.version.split()[0]}
    for name in ('torch', 'torchaudio', 'torchvision', 'audiocraft', 'transformers', 'dora',
                 'hydra', 'flashy', 'xformers', 'numpy'):
        try:
            module = importlib.import_module(name)
            versions[name] = getattr(module, '__version__', '?')
        except Exception as exc:  # a broken import is exactly what this command reports
            problems.append(f"import {name}: {type(exc).__name__}: {exc}")
    try:
        import od.train  # noqa: F401  (Dora main: config tree, team config, registry)
        from od.conditioners import hooks, registry
        hooks.install()
        versions['conditioners'] = ','.join(registry.registered())
    except Exception as exc:
        problems.append(f"import od.train: {type(exc).__name__}: {exc}")
    if not problems:  # od's declared hooks into AudioCraft / laion-clap (od/conditioners/hooks.py)
        from .conditioners import hooks
        problems += [f"hook {p}" for p in hooks.verify()]
    print('[od] ' + '  '.join(f"{k}={v}" for k, v in versions.items()))
    from .core import numba_cache
    notes, cache_problems = numba_cache.check(repair=True)
    for note in notes:
        print(f"[od] {note}")
    problems += cache_problems
    try:
        from xformers import _cpp_lib
        if _cpp_lib._cpp_library_load_exception is not None:
            print("[od] note: xformers kernels unavailable for this torch; od uses the `torch` "
                  "attention backend (efficient_attention_backend=torch), so nothing is lost.")
    except Exception:
        pass
    try:
        import torch
        if torch.cuda.is_available():
            print(f"[od] GPU: {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})")
        else:
            print("[od] WARNING: no GPU visible: training runs on CPU (fine for the debug solver "
                  "and tests, far too slow for real MusicGen fine-tuning).")
    except Exception:
        pass
    for problem in problems:
        print(f"[od] ERROR {problem}", file=sys.stderr)
    if problems:
        print("[od] the environment is broken: re-run ./install.sh (rm -rf .venv for a clean one).",
              file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
