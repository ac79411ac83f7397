"""Concept datasets for textual inversion: folders of audio -> chunks + cached codec tokens.

    python -m od.data.concepts <name> <audio-root>       # <audio-root>/<concept>/*.wav|mp3|flac

Each file is cut into `--chunk` second pieces (default 5; a remainder shorter than a chunk is
dropped), each chunk is encoded ONCE by the compression model and its tokens saved as one
tensor per chunk ([K, T] int16), atomically:

    dataset/<name>/chunks/<key>/<concept>/<track>-<file id>_<i>.wav
    dataset/<name>/tokens/<key>/<concept>/<track>-<file id>_<i>.pt

Cached chunks are keyed by everything they depend on: `<key>` hashes the codec (checkpoint and
seed) and the chunk length, `<file id>` the file's path inside its concept folder (so
`a/track.wav`, `b/track.wav` and `track.flac` stay apart), size and modification time (an
edited file is encoded again).
    egs/<name>/metadata_train.json      [{audio_path, encoded_path, concept, track_id}, ...]
    egs/<name>/metadata_concepts.json   {concepts: {name: {tracks, chunks}}, codec: {...}, ...}

Training (`solver=musicgen/textual_inversion`) reads only the tokens; it refuses them when its
codec's fingerprint differs from the one recorded here. Corrupt and too-short files are
reported and skipped with counts; re-running skips chunks already cached.
"""
from __future__ import annotations

import argparse
import logging
import sys
import typing as tp
from pathlib import Path

from ..atomic import DiskFullError
from ..environment import ROOT
from ..solvers.concept_data import *  # noqa: F401,F403  (the library this command parses arguments for)
from ..solvers.concept_data import (
    DEBUG_CODEC,
    next_steps,
    prepare_concepts,
    write_dset_config,
    write_synthetic_concepts,
)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.data.concepts',
        description="Prepare a concept dataset for textual inversion: cut <audio-root>/<concept>/* "
                    "into chunks, encode each chunk once with the compression model, cache its tokens "
                    "and write egs/<name>/metadata_train.json and metadata_concepts.json.",
        epilog="example: python -m od.data.concepts my_concepts ~/music/concepts --chunk 5 "
               "--compression-model //pretrained/facebook/encodec_32khz\n"
               "then: dora run solver=musicgen/textual_inversion dset=concepts/my_concepts ...",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('name', help="dataset name (dataset/<name>/, egs/<name>/)")
    parser.add_argument('audio_root', help="folder with one sub-folder of audio per concept")
    parser.add_argument('--chunk', type=float, default=5.0, help="chunk length in seconds (default 5)")
    parser.add_argument('--compression-model', default='//pretrained/facebook/encodec_32khz',
                        help="the training run's compression_model_checkpoint (default: EnCodec 32 kHz; "
                             f"{DEBUG_CODEC} for solver=musicgen/textual_inversion_debug)")
    parser.add_argument('--seed', type=int, default=2036, help="the training run's seed (default 2036); "
                        "it decides the weights of the random debug codec")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dataset-dir', default=str(ROOT / 'dataset'))
    parser.add_argument('--egs-dir', default=str(ROOT / 'egs'))
    parser.add_argument('--config-dir', default=str(ROOT / 'config' / 'dset' / 'concepts'),
                        help="folder that gets <name>.yaml (default: %(default)s)")
    parser.add_argument('--synthesise', nargs='+', metavar='GENRE', default=None,
                        help="first write synthetic concepts (od.data.example genres, e.g. chiptune ambient) "
                             "into <audio-root>: a dataset to try the pipeline on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    from .. import environment
    environment.setup()
    try:
        if args.synthesise:
            write_synthetic_concepts(args.audio_root, args.synthesise)
        report = prepare_concepts(args.name, args.audio_root, args.chunk, args.compression_model, args.seed,
                                  args.device, args.dataset_dir, args.egs_dir)
    except (FileNotFoundError, ValueError, DiskFullError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    config = write_dset_config(args.name, Path(args.egs_dir) / args.name, Path(args.config_dir))
    print(f"dset config: {config}")
    print(next_steps(args.name, args.compression_model))
    return 0


if __name__ == '__main__':
    sys.exit(main())
