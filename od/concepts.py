"""The `concepts` command: argument parsing for od.solvers.concept_data (what it does is documented there)."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import logging
import sys
import typing as tp
from pathlib import Path

from .core.atomic import DiskFullError
from .core.environment import ROOT
from .solvers.concept_data import DEBUG_CODEC, next_steps, prepare_concepts, write_dset_config, write_synthetic_concepts


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.concepts',
        description="Prepare a concept dataset for textual inversion: cut <audio-root>/<concept>/* "
                    "into chunks, encode each chunk once with the compression model, cache its tokens "
                    "and write egs/<name>/metadata_train.json and metadata_concepts.json.",
        epilog="example: python -m od.concepts my_concepts ~/music/concepts --chunk 5 "
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
