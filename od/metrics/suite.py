"""One table of od's audio metrics, shared by `python -m od.eval` and the solver's evaluate stage.

    from od.metrics import suite
    names = suite.parse_metrics('fad_vggish,fad_clap,clap_score')   # also: kad_*, rhythm, video_sensitivity
    opts = suite.MetricOptions(vggish_checkpoint=None, clap_model=None, stats_cache='logs/fad_cache')
    suite.check_metrics(names, opts)          # at start-up: missing env/weights raise here
    report = suite.compute_metrics(names, reference_files, generated_files, texts, opts)
    report['fad_vggish'], report['details']['fad_vggish']['random_init']

Each metric is (check, compute). `check` must be cheap and raise a clear error (FadEnvironmentError,
MissingWeightsError) so a training run fails at its start, not at its first evaluation.
`compute` gets the reference and generated audio files (and one text per generated file for
text metrics) and returns a dict whose entry named like the metric is the float to log.
Heavy dependencies (TF env, laion-clap) are imported only when their metric is used.

`rhythm` needs no weights: the generated music's beats against the visual rhythm (cuts, motion
peaks) of the video of the same name (`MetricOptions.videos`, or the `<stem>.mp4` beside each
generated file, as od.clip writes them), read against chance (re-paired videos) and, when the
reference holds the videos' own audio under the same names, the ceiling and BCS/BHS.

`video_sensitivity` needs no weights either: more draws of each generated file (the same names
in `MetricOptions.more_samples`), and how much more the music differs between videos than between
draws of one video (od.metrics.video_sensitivity).
"""
from __future__ import annotations

import typing as tp
from dataclasses import dataclass


@dataclass
class MetricOptions:
    vggish_checkpoint: tp.Optional[str] = None  # None: $OD_VGGISH_CHECKPOINT or //reference/fad/vggish_model.ckpt
    clap_model: tp.Optional[str] = None  # None: od.metrics.clap's default model
    stats_cache: tp.Optional[str] = None  # folder for cached reference statistics (None: no cache)
    workers: int = 2  # Beam DirectRunner workers for VGGish
    progress: bool = True
    vggish_runner: tp.Any = None  # od.metrics.fad_tf.runners.RunnerSpec (None: the DirectRunner with `workers`)
    videos: tp.Optional[str] = None  # rhythm: folder of the videos, paired by file stem (None: beside each file)
    more_samples: tp.Sequence[str] = ()  # video_sensitivity: folders holding more draws, same file names


Files = tp.Sequence[str]


@dataclass(frozen=True)
class Metric:
    check: tp.Callable[[MetricOptions], None]
    compute: tp.Callable[[Files, Files, tp.Optional[tp.Sequence[str]], MetricOptions], dict]
    needs_texts: bool = False
    lower_is_better: bool = True
    needs_reference: bool = True
    describe: tp.Optional[tp.Callable[[dict], tp.List[str]]] = None  # more summary lines from the result
    gaussian: bool = False  # a Fréchet distance: warn when the sample is small for its dimension


def _check_vggish(o: MetricOptions) -> None:
    from .vggish import check_fad_vggish
    check_fad_vggish(o.vggish_checkpoint, o.vggish_runner)


def _fad_vggish(ref: Files, gen: Files, texts, o: MetricOptions) -> dict:
    from .vggish import fad_vggish
    return fad_vggish(ref, gen, o.vggish_checkpoint, o.stats_cache, o.workers, o.progress, o.vggish_runner)


def _check_clap(o: MetricOptions) -> None:
    from .clap import check_clap
    check_clap(o.clap_model)


def _fad_clap(ref: Files, gen: Files, texts, o: MetricOptions) -> dict:
    from .clap import fad_clap
    from .fad import stats_cache_path
    # one cache file per reference set (clap.py keys the file and recomputes on a mismatch)
    cache = stats_cache_path(o.stats_cache, 'clap', ref, str(o.clap_model))
    return fad_clap(ref, gen, model=o.clap_model, stats_cache=cache, progress=o.progress)


def _clap_score(ref: Files, gen: Files, texts, o: MetricOptions) -> dict:
    from .clap import clap_score
    return clap_score(gen, texts, model=o.clap_model, progress=o.progress)


def _kad_vggish(ref: Files, gen: Files, texts, o: MetricOptions) -> dict:
    from .vggish import kad_vggish
    return kad_vggish(ref, gen, o.vggish_checkpoint, o.workers, o.progress, o.vggish_runner)


def _kad_clap(ref: Files, gen: Files, texts, o: MetricOptions) -> dict:
    from .clap import kad_clap
    return kad_clap(ref, gen, model=o.clap_model, progress=o.progress)


def _check_rhythm(o: MetricOptions) -> None:
    from .rhythm_files import check_rhythm
    check_rhythm(o.videos)


def _rhythm(ref: Files, gen: Files, texts, o: MetricOptions) -> dict:
    from .rhythm_files import rhythm_of_files
    return rhythm_of_files(gen, ref, o.videos, progress=o.progress)


def _check_sensitivity(o: MetricOptions) -> None:
    if not o.more_samples:
        raise ValueError("video_sensitivity needs more draws of every generated file, under the same names "
                         "(MetricOptions.more_samples; od.eval --more-samples DIR)")


def _video_sensitivity(ref: Files, gen: Files, texts, o: MetricOptions) -> dict:
    from pathlib import Path

    from .audio_features import log_mel_stats
    from .video_sensitivity import video_sensitivity
    draws = {Path(g).stem: [Path(g)] + [Path(folder) / Path(g).name for folder in o.more_samples] for g in gen}
    result = video_sensitivity({name: [log_mel_stats(f) for f in files] for name, files in draws.items()})
    return {'video_sensitivity': result['score'], **result}


def _describe_rhythm(result: dict) -> tp.List[str]:
    from .rhythm_files import describe
    return describe(result)


METRICS: tp.Dict[str, Metric] = {
    'fad_vggish': Metric(_check_vggish, _fad_vggish, gaussian=True),
    'fad_clap': Metric(_check_clap, _fad_clap, gaussian=True),
    'clap_score': Metric(_check_clap, _clap_score, needs_texts=True, lower_is_better=False, needs_reference=False),
    'kad_vggish': Metric(_check_vggish, _kad_vggish),
    'kad_clap': Metric(_check_clap, _kad_clap),
    'rhythm': Metric(_check_rhythm, _rhythm, lower_is_better=False, needs_reference=False, describe=_describe_rhythm),
    'video_sensitivity': Metric(_check_sensitivity, _video_sensitivity, lower_is_better=False, needs_reference=False),
}


def parse_metrics(spec: tp.Union[str, tp.Sequence[str]]) -> tp.List[str]:
    """'a,b' or ['a', 'b'] -> validated names, in order, without duplicates."""
    names = [n.strip() for n in (spec.split(',') if isinstance(spec, str) else spec) if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def check_metrics(names: tp.Sequence[str], options: tp.Optional[MetricOptions] = None) -> None:
    """Raise the first metric's error (env, weights) before any work is done."""
    options = options or MetricOptions()
    for name in parse_metrics(names):
        METRICS[name].check(options)


def compute_metrics(names: tp.Sequence[str], reference: Files, generated: Files,
                    texts: tp.Optional[tp.Sequence[str]] = None,
                    options: tp.Optional[MetricOptions] = None) -> dict:
    """{'<metric>': float, ..., 'details': {'<metric>': full result}, 'warnings': [...]}"""
    options = options or MetricOptions()
    names = parse_metrics(names)
    if not generated:
        raise ValueError("no generated audio files to evaluate")
    needing = [n for n in names if METRICS[n].needs_reference]
    if not reference and needing:
        raise ValueError(f"no reference audio files: {', '.join(needing)} need(s) a reference set")
    report: dict = {'details': {}, 'warnings': []}
    for name in names:
        metric = METRICS[name]
        if metric.needs_texts and (texts is None or len(texts) != len(generated)):
            raise ValueError(f"{name} needs one text per generated file "
                             f"({len(generated)} files, {0 if texts is None else len(texts)} texts)")
        result = metric.compute(reference, generated, texts, options)
        report[name] = float('nan') if result[name] is None else float(result[name])  # None: not measurable
        report['details'][name] = result
        if metric.gaussian:
            from .kad import small_sample_warning
            for side in ('reference', 'generated'):
                n = result.get(f'n_{side}', result.get(f'{side}_examples'))
                caveat = small_sample_warning(f"{name} ({side})", int(n), int(result['dim'])) \
                    if n is not None and result.get('dim') else None
                if caveat:
                    report['warnings'].append(caveat)
        if result.get('random_init'):
            report['warnings'].append(f"{name} was computed with a RANDOMLY INITIALISED model "
                                      f"({result.get('checkpoint', '?')}): smoke test only, not comparable")
    return report


def summary(report: dict) -> str:
    """A few readable lines: one per metric, then the warnings."""
    lines = []
    for name, result in report['details'].items():
        arrow = 'lower is better' if METRICS[name].lower_is_better else 'higher is better'
        lines.append(f"{name:<11} {report[name]:12.4f}   ({arrow})")
        if METRICS[name].describe:
            lines += ['            ' + line for line in METRICS[name].describe(result)]
    lines += [f"WARNING: {w}" for w in report['warnings']]
    return '\n'.join(lines)
