"""Evaluate generated audio against a reference set: VGGish-FAD, CLAP-FAD, CLAP score, KAD, rhythm,
video sensitivity.

    python -m od.eval --reference egs/example/valid --generated samples/ \\
        --metrics fad_vggish,fad_clap,clap_score --out report.json

    python -m od.eval --generated soundtracks/ --videos dataset/clips/valid --reference dataset/clips/valid \\
        --metrics rhythm,kad_clap --out report.json

    python -m od.eval --generated samples/260101_120000/ --metrics rhythm    # od.clip outputs: no reference

    python -m od.eval --reference ref/ --generated gen/ --runner dask --dask-address tcp://host:8786

--reference is a folder of audio or a manifest (egs folder or .jsonl[.gz]); --generated is a
folder of audio. clap_score needs a text per generated file: `<stem>.txt`, or the
`description` of a `<stem>.json` sidecar. VGGish runs in the separate TF environment
(`make fad-env`), as a Beam job on this machine (--runner direct, in process when worker
processes would not pay) or on a dask.distributed cluster (--runner dask: its workers must see
the audio and --work-dir); reference statistics are cached in --stats-cache and reused.

kad_vggish / kad_clap: Kernel Audio Distance on the same embeddings (no Gaussian assumption,
unbiased at small sizes). rhythm (no weights): the beats of each generated file against the
scene cuts and motion peaks of the video of the same name (--videos, or `<stem>.mp4` beside
it), with chance (videos re-paired with the other files' music) and, when --reference holds the
videos' own audio under the same names, the ceiling and BCS/BHS; --reference is optional then.
video_sensitivity (no weights): how much more the music differs between videos than between two
draws of one video; --more-samples names the folders of the other draws.
"""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import json
import sys
import typing as tp
from pathlib import Path

from .core.environment import MissingWeightsError
from .metrics import suite
from .metrics.fad_tf.runners import RunnerSpec
from .metrics.inputs import audio_files, descriptions  # noqa: F401  (od.eval.audio_files: public)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m od.eval', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--reference', default=None,
                        help='audio folder or manifest (egs/<name>/<split>); needed by FAD and KAD')
    parser.add_argument('--videos', default=None,
                        help='rhythm: folder of the videos, paired with generated files by name '
                             '(default: the <stem>.mp4 beside each generated file)')
    parser.add_argument('--generated', required=True, help='folder of generated audio')
    parser.add_argument('--more-samples', nargs='+', default=[], metavar='DIR',
                        help='video_sensitivity: folders holding more draws of the generated files, same names '
                             '(od.pipeline writes the second draw to <report>/seed1/)')
    parser.add_argument('--metrics', default='fad_vggish', help=f"comma list of {', '.join(suite.METRICS)}")
    parser.add_argument('--out', default=None, help='write the JSON report here (atomically)')
    parser.add_argument('--vggish-checkpoint', default=None,
                        help='VGGish checkpoint (default $OD_VGGISH_CHECKPOINT or //reference/fad/vggish_model.ckpt)')
    parser.add_argument('--clap-model', default=None, help='CLAP model for fad_clap / clap_score')
    parser.add_argument('--stats-cache', default=str(Path('logs') / 'fad_cache'),
                        help="folder caching reference statistics ('' disables)")
    beam = parser.add_argument_group('where VGGish runs (a Beam job in the FAD environment)')
    RunnerSpec.add_arguments(beam)   # --runner --workers --dask-address --tf-threads --batch-size --beam-arg
    beam.add_argument('--work-dir', default=None,
                      help='folder for the job\'s outputs that every worker sees (default: system temp)')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)

    try:
        names = suite.parse_metrics(args.metrics)
        runner = RunnerSpec.from_namespace(args).replace(work_dir=args.work_dir)
    except ValueError as exc:
        parser.error(str(exc))
    options = suite.MetricOptions(args.vggish_checkpoint, args.clap_model, args.stats_cache or None,
                                  args.workers, not args.no_progress, vggish_runner=runner, videos=args.videos,
                                  more_samples=args.more_samples)
    needing = [n for n in names if suite.METRICS[n].needs_reference]
    if args.reference is None and needing:
        parser.error(f"--reference is needed by {', '.join(needing)}")
    try:
        suite.check_metrics(names, options)  # env / weights errors before any embedding
        reference = audio_files(args.reference) if args.reference is not None else []
        generated = audio_files(args.generated)
        texts = descriptions(generated) if any(suite.METRICS[n].needs_texts for n in names) else None
    except (FileNotFoundError, MissingWeightsError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}\nNothing was computed.", file=sys.stderr)
        return 2
    print(f"[od.eval] {len(reference)} reference, {len(generated)} generated file(s); metrics: {', '.join(names)}")
    from .core.atomic import clean_stale
    for folder in (args.stats_cache, args.out and Path(args.out).parent):
        if folder:
            clean_stale(folder)  # temporaries of killed runs
    try:
        report = suite.compute_metrics(names, reference, generated, texts, options)
        report.update(reference=str(args.reference), generated=str(args.generated))
        if args.out:
            from .core.atomic import write_text
            write_text(args.out, json.dumps(report, indent=2, default=str))  # a NaN metric is still written
    except (OSError, RuntimeError, ValueError) as exc:  # a full disk (DiskFullError says so), a failed job
        message = ' '.join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}\nNo report was written{' to ' + str(args.out) if args.out else ''}; "
              "fix the cause and run the same command again.", file=sys.stderr)
        return 1
    print(suite.summary(report))
    if args.out:
        print(f"[od.eval] report: {args.out}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
