"""Convert a weights file od refuses into plain tensors that od loads safely.

    python -m od.trust checkpoints/reference/lukewys/laion_clap/some_checkpoint.pt
    python -m od.trust downloaded.bin --out downloaded.plain.pt --force

od reads PyTorch files only as tensors and plain data (`torch.load(weights_only=True)`); a file
that pickles other objects (training state, a model class, ...) is refused, because unpickling it
for real could run any code. This command reads such a FILE without running any of its code
either: tensors, numpy arrays, numbers and strings are kept, every other object is dropped
(never imported, never called) and listed, and the rest is written to --out (default:
<file stem>.plain<suffix> beside it). Use it on files whose weights you trust; point od at the
converted file. An existing --out is kept unless --force; on any error nothing is written.
"""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import sys
import typing as tp
from pathlib import Path


def describe(kept: tp.Any) -> str:
    """'3 tensors (1,234 numbers) and 2 other values' for a Conversion."""
    parts = [f"{kept.tensors} tensor{'s' * (kept.tensors != 1)} ({kept.elements:,} numbers)"]
    if kept.values:
        parts.append(f"{kept.values} other value{'s' * (kept.values != 1)} (numbers, strings)")
    return ' and '.join(parts)


def fail(message: str, src: Path, dst: Path) -> int:
    """Print one error line (naming `src` if the message names no file) and return the exit code."""
    message = message.rstrip('. ')
    where = '' if str(src) in message or str(dst) in message else f"{src} could not be converted: "
    print(f"error: {where}{message}. Nothing was written.", file=sys.stderr)
    return 2


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.trust', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('file', help="the .pt/.th/.bin file to convert")
    parser.add_argument('--out', default=None, help="converted file (default: <stem>.plain<suffix> beside FILE)")
    parser.add_argument('--force', action='store_true', help="replace --out if it exists")
    args = parser.parse_args(argv)
    src = Path(args.file)
    dst = Path(args.out) if args.out else src.with_name(f'{src.stem}.plain{src.suffix or ".pt"}')
    if dst.resolve() == src.resolve():
        print(f"error: --out must differ from the file being converted ({src}). Nothing was written.",
              file=sys.stderr)
        return 2
    from .core.safe_load import convert_trusted
    try:
        result = convert_trusted(src, dst, overwrite=args.force)
    except KeyboardInterrupt:
        print(f"interrupted: {dst} was not written.", file=sys.stderr)
        return 130
    except OSError as exc:  # missing/unreadable FILE, an existing or unwritable --out, a full disk
        line = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        return fail(line, src, dst)
    except Exception as exc:  # noqa: BLE001 — whatever a malformed file raises: one line, no traceback
        return fail((str(exc).splitlines() or [type(exc).__name__])[0], src, dst)
    for item in result.dropped[:20]:
        print(f"  dropped {item}")
    if len(result.dropped) > 20:
        print(f"  ... and {len(result.dropped) - 20} more")
    print(f"wrote {dst}: {describe(result)}; dropped {len(result.dropped)} other object(s). "
          f"od loads it without running code.")
    return 0


if __name__ == '__main__':
    sys.exit(main())
