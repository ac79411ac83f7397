"""One table of od's audio metrics, shared by `python -m od.eval` and the solver's evaluate stage.

    from od.metrics import suite
    names = suite.parse_metrics('fad_vggish,fad_clap,clap_score')
    opts = suite.MetricOptions(vggish_checkpoint=None, clap_model=None, stats_cache='logs/fad_cache')
    suite.check_metrics(names, opts)          # at start-up: missing env/weights raise here
    report = suite.compute_metrics(names, reference_files, generated_files, texts, opts)
    report['fad_vggish'], report['details']['fad_vggish']['random_init']

Each metric is (check, compute). `check` must be cheap and raise a clear error (FadEnvironmentError,
MissingWeightsError) so a training run fails at its start, not at its first evaluation.
`compute` gets the reference and generated audio files (and one text per generated file for
text metrics) and returns a dict whose entry named like the metric is the float to log.
Heavy dependencies (TF env, laion-clap) are imported only when their metric is used.
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
    vggish_runner: tp.Any = None  # od.fad_tf.runners.RunnerSpec (None: the DirectRunner with `workers`)


Files = tp.Sequence[str]


@dataclass(frozen=True)
class Metric:
    check: tp.Callable[[MetricOptions], None]
    compute: tp.Callable[[Files, Files, tp.Optional[tp.Sequence[str]], MetricOptions], dict]
    needs_texts: bool = False
    lower_is_better: bool = True


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


METRICS: tp.Dict[str, Metric] = {
    'fad_vggish': Metric(_check_vggish, _fad_vggish),
    'fad_clap': Metric(_check_clap, _fad_clap),
    'clap_score': Metric(_check_clap, _clap_score, needs_texts=True, lower_is_better=False),
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
    if not reference and any(n != 'clap_score' for n in names):
        raise ValueError("no reference audio files: FAD needs a reference set")
    report: dict = {'details': {}, 'warnings': []}
    for name in names:
        metric = METRICS[name]
        if metric.needs_texts and (texts is None or len(texts) != len(generated)):
            raise ValueError(f"{name} needs one text per generated file "
                             f"({len(generated)} files, {0 if texts is None else len(texts)} texts)")
        result = metric.compute(reference, generated, texts, options)
        report[name] = float(result[name])
        report['details'][name] = result
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
    lines += [f"WARNING: {w}" for w in report['warnings']]
    return '\n'.join(lines)
