"""od's metrics in the MusicGen solver's evaluate stage (see od/metrics/suite.py).

    evaluate.every=N evaluate.metrics.fad=true          # VGGish-FAD via the TF env
    evaluate.metrics.fad_clap=true evaluate.metrics.clap_score=true
    metrics.fad.tf.model_path=PATH metrics.clap.model=... metrics.fad.stats_cache=DIR
    metrics.fad.tf.runner=dask metrics.fad.tf.dask_address=tcp://host:8786   # where VGGish runs

`fad` keeps AudioCraft's key name but runs od's VGGish pipeline (AudioCraft's needs
google-research's scripts). Generated audio of the evaluate set is written to
`<xp>/evaluate/epoch_<n>/`; the reference is the evaluate set's source files, whose statistics
are cached across epochs. Metrics are checked when the solver is built, so a missing TF env or
checkpoint fails in seconds.
"""
from __future__ import annotations

import contextlib
import typing as tp
from pathlib import Path

from ..metrics import suite
from ..metrics.fad_tf.runners import RunnerSpec

CONFIG_KEYS = {'fad': 'fad_vggish', 'fad_clap': 'fad_clap', 'clap_score': 'clap_score'}


def configured_metrics(cfg) -> tp.List[str]:
    """od metric names switched on by `evaluate.metrics.<key>=true`."""
    enabled = cfg.evaluate.get('metrics') or {}
    return [name for key, name in CONFIG_KEYS.items() if enabled.get(key, False)]


def vggish_runner(tf_cfg) -> RunnerSpec:
    """`metrics.fad.tf.{runner, workers, dask_address, threads, batch_size, beam_args, work_dir}`
    -> where the VGGish Beam job runs (od/metrics/fad_tf/runners.py)."""
    threads, work_dir = tf_cfg.get('threads'), tf_cfg.get('work_dir')
    if work_dir:
        from dora import git_save  # Hydra moved the working directory: paths are the caller's
        work_dir = git_save.to_absolute_path(work_dir)
    return RunnerSpec(runner=str(tf_cfg.get('runner') or 'direct'), workers=int(tf_cfg.get('workers', 2)),
                      dask_address=tf_cfg.get('dask_address') or None,
                      tf_threads=None if threads is None else int(threads),
                      batch_size=int(tf_cfg.get('batch_size', 64)),
                      beam_args=tuple(str(a) for a in (tf_cfg.get('beam_args') or ())),
                      work_dir=work_dir or None)


def metric_options(cfg, xp_folder: Path) -> suite.MetricOptions:
    fad = cfg.get('metrics', {}).get('fad', {}) or {}
    tf_cfg = fad.get('tf', {}) or {}
    clap = cfg.get('metrics', {}).get('clap', {}) or {}
    runner = vggish_runner(tf_cfg)
    return suite.MetricOptions(
        vggish_checkpoint=tf_cfg.get('model_path'), clap_model=clap.get('model'),
        stats_cache=fad.get('stats_cache') or str(xp_folder / 'fad_cache'),
        workers=runner.workers, progress=False, vggish_runner=runner)


@contextlib.contextmanager
def without_od_metrics(cfg):
    """AudioCraft's evaluate loop sees od's metric keys switched off (restored after)."""
    from omegaconf import open_dict
    saved = {k: cfg.evaluate.metrics[k] for k in CONFIG_KEYS if k in cfg.evaluate.metrics}
    with open_dict(cfg):
        for key in saved:
            cfg.evaluate.metrics[key] = False
    try:
        yield
    finally:
        with open_dict(cfg):
            for key, value in saved.items():
                cfg.evaluate.metrics[key] = value


def generate_for_metrics(solver, out_dir: Path) -> None:
    """Generate one clip per evaluate item, as AudioCraft's evaluate loop does, and write it.

    Each process writes `r<rank>_<i>_<stem>.wav` + `.txt` (its description) and
    `r<rank>_reference.txt` (the evaluate set's source files it saw).
    """
    import flashy
    from audiocraft.data.audio import audio_write
    from audiocraft.data.audio_utils import normalize_audio
    out_dir.mkdir(parents=True, exist_ok=True)
    reference, generated = [], []
    norm = dict(solver.cfg.generate.audio)
    norm.pop('format', None)
    rank = flashy.distrib.rank()
    loader = solver.dataloaders['evaluate']
    for batch in solver.log_progress('evaluate metrics generation', loader, total=len(loader),
                                     updates=solver.log_updates):
        audio, meta = batch  # audio [B, C, T]
        duration = solver.cfg.evaluate.fixed_generation_duration or audio.shape[-1] / solver.cfg.sample_rate
        gen = solver.run_generate_step(batch, gen_duration=duration, **solver.generation_params)
        y_pred = gen['gen_audio'].detach()[..., :audio.shape[-1]].cpu()  # [B, C, T]
        for wav, m in zip(y_pred, meta):
            stem = f'r{rank}_{len(generated):05d}_{Path(m.meta.path).stem}'
            path = audio_write(out_dir / stem, normalize_audio(wav, **norm), solver.cfg.sample_rate,
                               format='wav', normalize=False)
            path.with_suffix('.txt').write_text(m.description or '')
            generated.append(str(path))
            reference.append(str(m.meta.path))
    (out_dir / f'r{rank}_reference.txt').write_text(''.join(f'{r}\n' for r in sorted(set(reference))))


def run_od_metrics(solver, names: tp.Sequence[str]) -> dict:
    """Generate, then compute `names` with the suite; floats only, ready for the XP history."""
    import flashy
    out_dir = Path(solver.folder) / 'evaluate' / f'epoch_{solver.epoch}'
    import torch

    from ..metrics.inputs import descriptions
    with torch.no_grad():
        generate_for_metrics(solver, out_dir)
    flashy.distrib.barrier()
    if not flashy.distrib.is_rank_zero():
        return {}  # rank 0 embeds everything (files of all ranks are in the same folder)
    generated = sorted(str(p) for p in out_dir.glob('r*_*.wav'))
    reference = sorted({line for f in out_dir.glob('r*_reference.txt') for line in f.read_text().split('\n') if line})
    texts = descriptions(generated) if any(suite.METRICS[n].needs_texts for n in names) else None
    report = suite.compute_metrics(names, reference, generated, texts,
                                   metric_options(solver.cfg, Path(solver.folder)))
    for warning in report['warnings']:
        solver.logger.warning(warning)
    return {name: report[name] for name in names}
