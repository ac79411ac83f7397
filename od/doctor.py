"""Self-check of an od environment: versions, imports that must work, GPU or not.

    python -m od.doctor
"""
from __future__ import annotations

import importlib
import sys


def main() -> int:
    from . import __version__, environment
    environment.setup()
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
        from od import registry
        registry.install()
        versions['conditioners'] = ','.join(registry.registered())
    except Exception as exc:
        problems.append(f"import od.train: {type(exc).__name__}: {exc}")
    print('[od] ' + '  '.join(f"{k}={v}" for k, v in versions.items()))
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
