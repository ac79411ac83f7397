"""Commands of the FAD environment. Run with the FAD venv's python (no torch needed):

    .venv-fad/bin/python -m od.fad_tf embed --files list.txt --out /tmp/emb --checkpoint vggish_model.ckpt
    .venv-fad/bin/python -m od.fad_tf embed --set ref=ref.txt --set gen=gen.txt --out /tmp/emb --checkpoint ...
    .venv-fad/bin/python -m od.fad_tf embed --files list.txt --out /shared/emb --checkpoint ... \
        --runner dask --dask-address tcp://scheduler:8786
    .venv-fad/bin/python -m od.fad_tf embed --files list.txt --out /shared/emb --checkpoint ... \
        --runner slurm --workers 4 --slurm-partition cpu --slurm-memory 8GB
    .venv-fad/bin/python -m od.fad_tf random-checkpoint --out /tmp/vggish_random.ckpt
    .venv-fad/bin/python -m od.fad_tf list-variables /tmp/vggish_random.ckpt

`embed` reads a listing: a JSON list of audio paths (what od writes), or one path per line. --runner direct (default) runs on this machine, in
process when worker processes would not pay; --runner dask on a dask.distributed cluster (its
workers must see the files and --out); --runner slurm on such a cluster whose workers are
--workers SLURM jobs (od/metrics/fad_tf/slurm.py, dask-jobqueue; SLURM_CONF names the cluster); any other Beam runner takes its options after `--`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from .metrics.fad_tf.runners import RunnerSpec
from .metrics.fad_tf.slurm import SlurmWorkers

warnings.filterwarnings('ignore', category=UserWarning)  # tf-slim's legacy-layer deprecations
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TF's C++ start-up chatter is not progress


def read_listing(path: str):
    """Audio paths of a listing: a JSON list (what od writes: any file name survives), or one
    path per line."""
    with open(path, encoding='utf-8', errors='surrogateescape') as f:
        text = f.read()
    if path.endswith('.json'):
        return [str(p) for p in json.loads(text)]
    return [line.strip() for line in text.splitlines() if line.strip()]


def _end_group_on_sigterm() -> None:
    """od starts this process as a group leader: on SIGTERM (Ctrl-C or death of od's process)
    the whole group goes, Beam's worker processes included."""
    import signal

    def stop(signum, frame):
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), signal.SIGKILL)
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m od.fad_tf', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    emb = sub.add_parser('embed', help='embed a list of audio files and write their statistics')
    emb.add_argument('--files', help='text file, one audio path per line')
    emb.add_argument('--set', action='append', default=[], metavar='NAME=LIST',
                     help='a named set (repeatable): its results go to OUT/NAME/; one Beam job for all')
    emb.add_argument('--out', required=True, help='output folder (embeddings/, failed/, stats.npz, summary.json)')
    emb.add_argument('--checkpoint', required=True, help='VGGish checkpoint prefix (vggish_model.ckpt)')
    emb.add_argument('--pca-params', default=None, help='vggish_pca_params.npz: apply the PCA post-processor')
    RunnerSpec.add_arguments(emb)
    SlurmWorkers.add_arguments(emb)
    emb.add_argument('beam_args', nargs='*', help='after --: more Beam pipeline options (a --runner here wins)')
    rnd = sub.add_parser('random-checkpoint', help='write a randomly initialised VGGish (smoke tests only)')
    rnd.add_argument('--out', required=True, help='checkpoint prefix to write')
    rnd.add_argument('--seed', type=int, default=0)
    lst = sub.add_parser('list-variables', help='print name and shape of every variable of a checkpoint')
    lst.add_argument('checkpoint')
    args = parser.parse_args(argv)

    if args.command == 'embed':
        import logging
        handler = logging.StreamHandler()  # od's own progress only; Beam, Dask and TF keep theirs
        handler.setFormatter(logging.Formatter('[od.fad_tf] %(message)s'))
        logging.getLogger('od').addHandler(handler)
        logging.getLogger('od').setLevel(logging.INFO)
        logging.getLogger('od').propagate = False  # Beam configures the root logger too
        from .metrics.fad_tf.pipeline import run_sets
        sets = dict(s.split('=', 1) for s in args.set)
        if args.files:
            sets['.'] = args.files
        if not sets:
            parser.error('embed needs --files LIST or --set NAME=LIST')
        sets = {name: read_listing(listing) for name, listing in sets.items()}
        _end_group_on_sigterm()
        try:
            spec = RunnerSpec.from_namespace(args)
            slurm = SlurmWorkers.from_namespace(args, spec.workers) if spec.runner == 'slurm' else None
        except ValueError as exc:
            parser.error(str(exc))
        if slurm is None:
            print(json.dumps(run_sets(sets, args.out, args.checkpoint, spec, args.pca_params, args.beam_args)))
            return 0
        from .metrics.fad_tf.slurm import dask_on_slurm
        with dask_on_slurm(slurm, os.path.join(args.out, 'slurm-logs')) as address:
            spec = spec.replace(runner='dask', dask_address=address)
            print(json.dumps(run_sets(sets, args.out, args.checkpoint, spec, args.pca_params, args.beam_args)))
        return 0
    if args.command == 'random-checkpoint':
        from .metrics.fad_tf.vggish import write_random_checkpoint
        print(write_random_checkpoint(args.out, args.seed))
        return 0
    from .metrics.fad_tf.vggish import checkpoint_variables
    for name, shape in checkpoint_variables(args.checkpoint):
        print(name, shape)
    return 0


if __name__ == '__main__':
    sys.exit(main())
