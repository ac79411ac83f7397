"""Convert a weights file you trust into plain tensors that od loads safely.

    python -m od.trust checkpoints/reference/lukewys/laion_clap/some_checkpoint.pt
    python -m od.trust downloaded.bin --out downloaded.plain.pt

od reads PyTorch files only as tensors and plain data (`torch.load(weights_only=True)`); a file
that pickles other objects (training state, a model class, ...) is refused, because unpickling it
could run any code. This command is the one explicit exception: it loads FILE with full
unpickling — so only run it on files from a source you trust — keeps its tensors, numbers and
strings, lists what it dropped, and writes them to --out (default: <file stem>.plain<suffix>
beside it). Point od at the converted file.
"""
from __future__ import annotations

import argparse
import sys
import typing as tp
from pathlib import Path


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.trust', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('file', help="the .pt/.th/.bin file you trust")
    parser.add_argument('--out', default=None, help="converted file (default: <stem>.plain<suffix> beside FILE)")
    args = parser.parse_args(argv)
    from .environment import setup
    from .safe_load import convert_trusted
    setup()
    src = Path(args.file)
    dst = Path(args.out) if args.out else src.with_name(f'{src.stem}.plain{src.suffix or ".pt"}')
    if dst.resolve() == src.resolve():
        print("error: --out must differ from the file being converted.", file=sys.stderr)
        return 2
    print(f"[od] loading {src} with full unpickling (you said you trust it)")
    try:
        dropped = convert_trusted(src, dst)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {src} could not be converted: {exc}\nNothing was written.", file=sys.stderr)
        return 2
    for item in dropped[:20]:
        print(f"  dropped {item}")
    if len(dropped) > 20:
        print(f"  ... and {len(dropped) - 20} more")
    print(f"wrote {dst} (tensors and plain data only; od loads it without running code)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
