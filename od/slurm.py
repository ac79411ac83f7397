"""`python -m od.slurm`: the command (argument parsing) over od.workflow.slurm_local."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import sys
import time
import typing as tp
from pathlib import Path

from .workflow.slurm_conf import PARTITION
from .workflow.slurm_local import DEFAULT_DIR, SlurmLocalError, install_line, missing_packages, start, status, stop


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.slurm', formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A one-node SLURM cluster on 127.0.0.1 (munged, slurmctld, slurmd) for trying od's grids.",
        epilog="example:\n  sudo python -m od.slurm start\n"
               "  export SLURM_CONF=/tmp/od-slurm-local/slurm.conf\n"
               "  AUDIOCRAFT_CLUSTER=slurm_local dora grid slurm_debug\n  sudo python -m od.slurm stop")
    parser.add_argument('action', choices=['start', 'stop', 'status', 'packages'],
                        help='packages: print the apt-get line for what is missing (nothing when all is there)')
    parser.add_argument('--dir', type=Path, default=DEFAULT_DIR,
                        help=f'state folder: config, spool, logs (default {DEFAULT_DIR}, or $OD_SLURM_DIR)')
    parser.add_argument('--timeout', type=float, default=60.0, help='seconds to wait for the node to be idle')
    args = parser.parse_args(argv)
    try:
        if args.action == 'start':
            began = time.monotonic()
            variables = start(args.dir, args.timeout)
            print(f"[od] local SLURM cluster up in {time.monotonic() - began:.1f} s "
                  f"(partition '{PARTITION}'); use it with:")
            for key, value in variables.items():
                print(f"export {key}={value}")
        elif args.action == 'stop':
            stopped = stop(args.dir)
            print(f"[od] stopped: {', '.join(stopped) or 'nothing was running'}")
        elif args.action == 'packages':
            missing = missing_packages()
            if missing:
                print(install_line(missing))
        else:
            print(status(args.dir))
    except SlurmLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
