"""The `pipeline` command: argument parsing for od.workflow.stages, whose docstring is this command's help text."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import os
import sys
import typing as tp

from .core.environment import ROOT, MissingWeightsError
from .workflow import stages as library
from .workflow.stages import SCALES, SEEDS, Pipeline, PipelineError, report_score, run, soundtrack_dir


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.pipeline', description=library.__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=library.__doc__.split('\n\n', 1)[1])
    parser.add_argument('raw', help="folder of videos (their own audio tracks, or <stem>.wav beside them)")
    parser.add_argument('overrides', nargs='*', help="Dora overrides for training (key=value)")
    parser.add_argument('--name', required=True, help="dataset/report name")
    parser.add_argument('--scale', default='small', choices=SCALES,
                        help="MusicGen to start from: facebook/musicgen-<scale>, fine-tuned with the one-GPU recipe "
                             "(solver=musicgen/finetune), or the random debug model (default %(default)s)")
    parser.add_argument('--lora', action='store_true', help="train LoRA adapters (solver=musicgen/finetune_lora): "
                                                           "less memory, the pretrained LM stays frozen")
    parser.add_argument('--epochs', type=int, default=None,
                        help="training length (default: the preset's); each epoch covers the training audio once")
    parser.add_argument('--gpu-memory', type=float, default=None, metavar='GB',
                        help="check the memory plan against a GPU of this size (default: the visible GPU)")
    parser.add_argument('--clip', default=None, help="CLIP for the frames: a hub name, a folder, or 'tiny' "
                                                     "(a random one written to <work>/checkpoints/tiny-clip; no weights)")
    parser.add_argument('--sync', action='store_true',
                        help="time-aligned video conditioning (conditioner=clipemb2music_sync): the frames reach "
                             "every token step, so the video can decide when the music moves (cuts -> hits)")
    parser.add_argument('--valid-fraction', type=float, default=0.2)
    parser.add_argument('--audio-from', default=None, help="folder of <stem>.<audio> for videos without sound")
    parser.add_argument('--soundtrack-seconds', type=float, default=30., help="music per valid video, from its start")
    parser.add_argument('--clap-model', default=None, help="CLAP weights for fad_clap (default: od.metrics.clap's)")
    parser.add_argument('--vggish-checkpoint', default=None,
                        help="VGGish checkpoint for fad_vggish (default: //reference/fad/vggish_model.ckpt)")
    parser.add_argument('--work', default=os.environ.get('OD_WORK', str(ROOT)),
                        help="where everything the run writes goes: dataset/, egs/, checkpoints/, reports/ and "
                             "the XPs (logs/xps/) (default: $OD_WORK, else the repository)")
    args = parser.parse_intermixed_args(argv)
    bad = [o for o in args.overrides if '=' not in o]
    if bad:
        parser.error(f"unexpected arguments {bad}: overrides are key=value (one raw folder only)")
    from pathlib import Path
    if Path(args.work).resolve() != ROOT.resolve() and not os.environ.get('AUDIOCRAFT_DORA_DIR'):
        # the run's XPs go under --work: said so by this process's Dora (od.train, imported later) too
        os.environ['AUDIOCRAFT_DORA_DIR'] = str(Path(args.work).resolve() / 'logs')
    from . import train  # noqa: F401  (Dora's main, bound for the workflow: after AUDIOCRAFT_DORA_DIR is set)
    try:
        p = Pipeline(args.raw, args.name, args.scale, args.overrides, args.clip, args.valid_fraction,
                     args.audio_from, args.soundtrack_seconds, args.work, clap_model=args.clap_model,
                     vggish_checkpoint=args.vggish_checkpoint, lora=args.lora, epochs=args.epochs,
                     gpu_memory=args.gpu_memory, sync=args.sync)
        run(p)
    except (PipelineError, MissingWeightsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\n[od.pipeline] interrupted: run the same command again to resume where it stopped.", file=sys.stderr)
        return 130
    videos = soundtrack_dir(p, SEEDS[0])
    print(f"\n[od.pipeline] soundtracked videos: {videos}/*.mp4\n[od.pipeline] report: {p.report_dir / 'index.html'}")
    score = report_score(p)
    if score is not None:
        print(f"[od.pipeline] video sensitivity: {score:.2f} (above 1: the video steers the music)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
