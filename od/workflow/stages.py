"""From a folder of videos to scored soundtracks, in one command.

    python -m od.pipeline ~/videos --name myclips                  # facebook/musicgen-small + CLIP
    python -m od.pipeline ~/videos --name myclips --lora --gpu-memory 24
    python -m od.pipeline ~/videos --name myclips --scale debug --clip tiny optim.epochs=4

Before anything is written, every weight the run needs is looked up (one message lists all
that are missing, and where each goes). Stages, each skipped when its output is up to date
(rerun the same command after a kill or Ctrl-C and it resumes at the stage it was in;
training resumes from its last epoch):

  plan        the one-GPU recipe (solver=musicgen/finetune, --lora: finetune_lora) sized from
              the clips' durations (read from their headers: nothing is written yet), its
              learning-rate schedule stepped through the whole run, and its memory plan
              (od.doctor --plan) for this GPU or --gpu-memory: a run that cannot run or does not
              fit stops here, naming the override that fits, with nothing written
  ingest      od.data.ingest: dataset/<name>/, egs/<name>/ (and, for a run in the repository,
              config/dset/audio/<name>.yaml; under --work the manifests are datasource.* overrides)
  checkpoint  od.make_ckpt from facebook/musicgen-<scale> (HF cache or reference dir); the
              debug scale starts from the random debug model and needs none
  cache       od.prep: CLIP embeddings of every video
  train       a real `dora run` XP (printed: typing it by hand gives the same signature)
  export      od.export -> checkpoints/<name>/
  soundtrack  od.clip on every valid video, with two seeds
  evaluate    video sensitivity and rhythm alignment (always: no weights), VGGish/CLAP FAD and
              KAD when their weights exist
  report      reports/<name>/index.html

Options after the folder that contain '=' are Dora overrides (optim.epochs=4, ...): they are
part of the XP signature, as with `dora run`. With --work DIR (or $OD_WORK) everything the run
writes goes under DIR, the XPs too (DIR/logs/xps/, unless AUDIOCRAFT_DORA_DIR says otherwise):
the checkout stays as it was.
"""
from __future__ import annotations

import json
import time
import typing as tp
from pathlib import Path

from ..core.environment import ROOT
from . import recipe
from .pipeline import SCALES, SEEDS, STAGES, Pipeline, PipelineError, digest, files_key, loader_workers  # noqa: F401  (the names od.pipeline exports)


# ---- stages ---------------------------------------------------------------------------
def stage_ingest(p: Pipeline) -> str:
    from ..data.ingest import ingest
    from ..data.walk import walk_files
    key = digest(files_key(walk_files(p.raw)), p.valid_fraction, p.audio_from, 'ingest-1')
    if p.up_to_date('ingest', key) and (p.egs / 'valid' / 'data.jsonl').exists():
        return 'up to date'
    started = time.time()
    report = ingest(p.raw, p.name, p.valid_fraction, p.audio_from, p.work / 'dataset', p.work / 'egs',
                    ROOT / 'config' / 'dset' / 'audio' if p.in_checkout else None)   # else: datasource.* overrides
    p.log(report.summary())
    if 'valid' not in report.manifests:
        raise PipelineError(f"{p.raw}: need at least 2 usable videos (one goes to valid to be soundtracked).")
    if report.kind != 'video':
        raise PipelineError(f"{p.raw} holds no video or image: od.pipeline trains video -> music. "
                            "Audio-only folders: python -m od.ingest, then dora run with a text/CLAP conditioner.")
    p.record('ingest', key, started, kept={s: r.kept for s, r in report.manifests.items()},
             skipped=len(report.skipped), summary=report.summary())
    if p.scale != 'debug' and p.schedule() != p.state.get('plan', {}).get('schedule'):
        p.log("[od.pipeline] the ingested clips size the run differently from their headers: planning again")
        stage_plan(p)
    return f"{sum(r.kept for r in report.manifests.values())} items"


def stage_plan(p: Pipeline) -> str:
    """The recipe sized from the raw files' durations (before ingest writes anything), its
    learning-rate schedule stepped through the whole run, and its memory plan: a schedule that
    cannot run or a plan that does not fit stops the run before any file is written."""
    from . import runs
    if p.scale != 'debug' and not p.ingested() and not p.durations()['train']:
        return "after ingest (no clip's length can be read from its headers)"   # ingest says why, or plans again
    schedule = p.schedule()
    cfg = runs.compose(p.model_overrides() + schedule + p.user_overrides)
    try:
        updates = recipe.check_schedule(cfg)
        name = cfg.schedule.get('lr_scheduler')
        warmup = (cfg.schedule.get(name) or {}).get('warmup') if name else None
        if warmup is not None and int(warmup) >= updates:
            p.log(f"[od plan] note: schedule.{name}.warmup={int(warmup)} is not shorter than the run's {updates} updates: "
                  f"the learning rate never reaches optim.lr ({float(cfg.optim.lr):g})")
        if p.scale == 'debug':
            return f"{p.preset_overrides()[0]}: {updates} updates (the debug solver is sized for a CPU)"
        lines = recipe.memory_plan_lines(cfg, p.gpu_memory)
    except recipe.RecipeError as exc:
        message = str(exc)
        if 'trainable=lora' in message and not p.lora:
            message += "\n(with od.pipeline: add --lora, which trains adapters with solver=musicgen/finetune_lora)"
        raise PipelineError(message) from None
    for line in lines:
        p.log(f"[od plan] {line}")
    p.state['plan'] = {'lines': lines, 'schedule': schedule}
    return (f"{p.preset_overrides()[0]}: {int(cfg.optim.epochs)} epochs x {int(cfg.optim.updates_per_epoch)} updates "
            f"of {int(cfg.dataset.batch_size)} x {float(cfg.dataset.segment_duration):g}-s segments")


def stage_checkpoint(p: Pipeline) -> str:
    if p.scale == 'debug':
        return 'not needed (the debug model starts from random weights)'
    from ..inference.loaders import locate_model
    from .make_ckpt import make_checkpoint
    source = p.source()
    overrides = p.model_overrides() + [o for o in p.user_overrides if o.startswith(('model/', 'transformer_lm.'))]
    located = locate_model(source)
    key = digest(source, overrides, files_key([located] if located.is_file() else located.iterdir()))
    if p.up_to_date('checkpoint', key) and p.start_ckpt.exists():
        return 'up to date'
    started = time.time()
    out, _ = make_checkpoint(source, p.start_ckpt, overrides)
    p.record('checkpoint', key, started, file=str(out))
    return str(out)


def stage_cache(p: Pipeline) -> str:
    from .prep import prepare
    key = digest(files_key(p.egs.glob('*/data.jsonl')), p.train_args())
    if p.up_to_date('cache', key):
        return 'up to date'
    started = time.time()
    report = prepare(p.train_args())
    p.record('cache', key, started, report=report)
    return '; '.join(f"{c['items']} videos, {c['embedded']} embedded now, {c['failed']} skipped" for c in report.values())


def history(folder: Path) -> tp.List[dict]:
    path = folder / 'history.json'
    return json.loads(path.read_text()) if path.exists() else []


def stage_train(p: Pipeline) -> str:
    xp = p.xp()
    epochs = int(xp.cfg.optim.epochs)
    done = len(history(Path(xp.folder)))
    p.log(f"[od.pipeline] XP {xp.sig}; the same run by hand:\n  {p.command()}")
    if done >= epochs:
        manifest, checkpoint = p.egs / 'train' / 'data.jsonl', Path(xp.folder) / 'checkpoint.th'
        if checkpoint.exists() and manifest.stat().st_mtime > checkpoint.stat().st_mtime:
            p.log("[od.pipeline] WARNING: the dataset changed after this XP finished; like `dora run`, the "
                  "same overrides name the same XP. Train on the new files with more epochs "
                  "(optim.epochs=...) or under a new --name.")
        return f"up to date ({done}/{epochs} epochs)"
    if done:
        p.log(f"[od.pipeline] resuming at epoch {done + 1}/{epochs}")
    from .launch import run_dora
    proc = run_dora(p.train_args(), dora_dir=p.dora_dir)
    if proc.returncode != 0:
        raise PipelineError(training_failure(Path(xp.folder), proc.returncode))
    return f"{len(history(Path(xp.folder)))}/{epochs} epochs in {xp.folder}"


def training_failure(folder: Path, code: int) -> str:
    """What to tell the user when `dora run` stopped: their fix (the run's own message) or, for
    an error that is not theirs, a bug report to file, with the failing line."""
    from .runs import FAILURE_FILE
    log = folder / 'solver.log.0'
    try:
        failure = json.loads((folder / FAILURE_FILE).read_text())
    except (OSError, ValueError):
        failure = None
    if failure and failure.get('kind') == 'bug':
        return (f"training crashed inside od/AudioCraft: {failure['type']}: {failure['message']}\n"
                f"  at {failure['where']}\n"
                "This is a bug in od (or in AudioCraft under od's recipe), not in your data or command. Please "
                f"report it with {folder / FAILURE_FILE} (the traceback) and {log}; running the same "
                "command again resumes from the last finished epoch.")
    if failure:
        return f"training stopped: {failure['message']}\nFix that and run the same command again to resume."
    return (f"training stopped (dora run exited with {code}); its log: {log}. Fix the cause and rerun the same "
            "command to resume (if the log shows a traceback inside od or AudioCraft, please report it).")


def stage_export(p: Pipeline) -> str:
    from ..inference.export import export
    checkpoint = Path(p.xp().folder) / 'checkpoint.th'
    key = digest(files_key([checkpoint]))
    if p.up_to_date('export', key) and (p.export_dir / 'state_dict.bin').exists():
        return 'up to date'
    started = time.time()
    export(checkpoint, p.name, p.export_dir.parent, overwrite=True)
    p.record('export', key, started, folder=str(p.export_dir))
    return str(p.export_dir)


def valid_videos(p: Pipeline) -> tp.List[Path]:
    from audiocraft.data.audio_dataset import load_audio_meta

    from ..data.frames import VIDEO_EXTS, companion
    metas = load_audio_meta(p.egs / 'valid' / 'data.jsonl', resolve=False)
    return [v for v in (companion(m.path, VIDEO_EXTS) for m in metas) if v is not None]


def soundtrack_dir(p: Pipeline, seed: int) -> Path:
    return p.report_dir / ('videos' if seed == SEEDS[0] else f'seed{seed}')


BATCH = 8  # soundtracks generated together (one sequential pass of the LM for the whole batch)


def stage_soundtrack(p: Pipeline) -> str:
    """Two samples of music per valid video (the "seeds" of the video-sensitivity score: one
    batch under seed 0, so each sample draws its own randomness), written and muxed by od.clip's
    own loop (od.inference.soundtrack.run); videos of the same length share a batch, so the LM
    runs once per batch, not per video."""
    from ..inference import load
    from ..inference.soundtrack import run as soundtrack_run
    videos = valid_videos(p)
    key = digest(files_key([p.export_dir / 'state_dict.bin']), files_key(videos), p.seconds, SEEDS)
    if p.up_to_date('soundtrack', key) and all((soundtrack_dir(p, s) / f"{v.stem}.wav").exists()
                                               for v in videos for s in SEEDS):
        return 'up to date'
    started = time.time()
    model = load(str(p.export_dir))
    model.set_generation_params(use_sampling=True, top_k=250, cfg_coef=3.0, duration=p.seconds)
    written, skipped = soundtrack_run(model, videos, soundtrack_dir(p, SEEDS[0]), duration=p.seconds, seed=SEEDS[0],
                                      batch_size=max(1, BATCH // len(SEEDS)),
                                      more_samples=[soundtrack_dir(p, s) for s in SEEDS[1:]], desc='soundtracks')
    done = [path.stem for path in written]
    for name, why in skipped:
        p.log(f"  skipped {name}: {why}")
    p.record('soundtrack', key, started, videos=done, skipped=skipped)
    return f"{len(done)} videos x {len(SEEDS)} samples -> {soundtrack_dir(p, SEEDS[0])}/"


def stage_evaluate(p: Pipeline) -> str:
    from ..core.atomic import write_json
    from ..metrics import suite
    ids = [v for v in p.state.get('soundtrack', {}).get('videos', [])
           if all((soundtrack_dir(p, s) / f"{v}.wav").exists() for s in SEEDS)]
    generated = [soundtrack_dir(p, SEEDS[0]) / f"{v}.wav" for v in ids]
    key = digest(files_key(generated + [soundtrack_dir(p, s) / f"{v}.wav" for v in ids for s in SEEDS[1:]]),
                 p.clap_model, p.vggish_checkpoint, 'evaluate-2')
    if p.up_to_date('evaluate', key) and (p.report_dir / 'metrics.json').exists():
        return 'up to date'
    started = time.time()
    metrics: tp.Dict[str, tp.Any] = {'values': {}, 'skipped': {}, 'files': {}}
    try:
        options = suite.MetricOptions(more_samples=[str(soundtrack_dir(p, s)) for s in SEEDS[1:]], progress=False)
        report = suite.compute_metrics(['video_sensitivity'], [], [str(g) for g in generated], None, options)
        metrics['video_sensitivity'] = report['details']['video_sensitivity']
        metrics['values']['video_sensitivity'] = metrics['video_sensitivity']['score']
        metrics['files']['video_sensitivity'] = {v: [str(soundtrack_dir(p, s) / f"{v}.wav") for s in SEEDS] for v in ids}
    except ValueError as exc:
        metrics['skipped']['video_sensitivity'] = str(exc)
    try:
        from ..metrics.rhythm_files import rhythm_of_files
        metrics['rhythm'] = rhythm_of_files(generated, valid_audio(p), videos=p.dataset / 'valid', progress=False)
        metrics['values'].update({k: metrics['rhythm'][k] for k in ('rhythm', 'bcs', 'bhs')
                                  if metrics['rhythm'][k] is not None})   # None: no events / no beats to score
    except (ValueError, RuntimeError, ImportError) as exc:   # no pairable video; scenedetect/OpenCV missing
        metrics['skipped']['rhythm'] = str(exc).strip().splitlines()[0][:300]
    metrics['values'].update(weighted_metrics(p, [str(g) for g in generated], metrics['skipped']))
    write_json(p.report_dir / 'metrics.json', metrics)
    p.record('evaluate', key, started)
    return ', '.join(f"{k} {v:.3f}" for k, v in metrics['values'].items()) or 'nothing measured'


def valid_audio(p: Pipeline) -> tp.List[str]:
    """The valid videos' own audio (the ground truth of FAD/KAD and of the rhythm ceiling)."""
    from audiocraft.data.audio_dataset import load_audio_meta
    return [m.path for m in load_audio_meta(p.egs / 'valid' / 'data.jsonl', resolve=False)]


def weighted_metrics(p: Pipeline, generated: tp.List[str], skipped: tp.Dict[str, str]) -> tp.Dict[str, float]:
    """VGGish and CLAP FAD and KAD of the soundtracks against the valid audio, when their weights
    are here; each one left out is named in `skipped` with the reason."""
    from ..metrics import suite
    reference = valid_audio(p)
    options = suite.MetricOptions(vggish_checkpoint=p.vggish_checkpoint, clap_model=p.clap_model,
                                  stats_cache=str(p.report_dir / 'fad_cache'), progress=False)
    values = {}
    for name in ('fad_vggish', 'fad_clap', 'kad_vggish', 'kad_clap'):
        try:
            suite.check_metrics([name], options)
            values[name] = suite.compute_metrics([name], reference, generated, None, options)[name]
        except Exception as exc:  # missing TF env / weights, or a failure inside the metric
            skipped[name] = str(exc).strip().splitlines()[0][:300]
    skipped['clap_score'] = "needs a text per soundtrack; video-conditioned music has no prompt to score against"
    return values


def stage_report(p: Pipeline) -> str:
    from ..report.page import write_page
    from ..report.plots import poster_png, spectrogram_png, timeline_png, training_png
    metrics = json.loads((p.report_dir / 'metrics.json').read_text())
    xp = p.xp()
    key = digest(files_key([p.report_dir / 'metrics.json', Path(xp.folder) / 'history.json']), 'report-2')
    if p.up_to_date('report', key) and (p.report_dir / 'index.html').exists():
        return 'up to date'
    started = time.time()
    per_video = (metrics.get('video_sensitivity') or {}).get('per_video', {})
    rows = []
    for vid in p.state.get('soundtrack', {}).get('videos', []):
        mp4 = soundtrack_dir(p, SEEDS[0]) / f"{vid}.mp4"
        if not mp4.exists():
            continue
        png = spectrogram_png(mp4.with_suffix('.wav'), p.report_dir / 'spectrograms' / f"{vid}.png", vid)
        sidecar = p.dataset / 'valid' / f"{vid}.json"
        source = json.loads(sidecar.read_text()).get('source', '') if sidecar.exists() else ''
        mine = per_video.get(vid) or {}
        scores = {label: mine[k] for k, label in (('score', 'video sensitivity'), ('to_other_videos', 'distance to other videos'),
                                                   ('between_seeds', 'distance between its seeds')) if k in mine}
        row = {'id': vid, 'source': source, 'video': mp4.relative_to(p.report_dir).as_posix(),
               'spectrogram': png.relative_to(p.report_dir).as_posix(), 'scores': scores,
               'poster': poster_png(mp4, p.report_dir / 'posters' / f"{vid}.png").relative_to(p.report_dir).as_posix()}
        times = (metrics.get('rhythm') or {}).get('times', {}).get(vid)
        if times:
            row['timeline'] = timeline_png(times, p.report_dir / 'timelines' / f"{vid}.png", vid
                                           ).relative_to(p.report_dir).as_posix()
            row['rhythm'] = metrics['rhythm']['per_video'][vid]
        rows.append(row)
    curves = training_png(history(Path(xp.folder)), p.report_dir / 'training.png')
    write_page(p.report_dir, {
        'name': p.name, 'scale': p.scale, 'sig': xp.sig, 'command': p.command(), 'rows': rows,
        'metrics': metrics, 'curves': curves.name if curves else None,
        'config': {'overrides': p.train_args(), 'solver': p.preset_overrides()[0].split('=', 1)[1],
                   'starts_from': p.source() or 'random weights (debug)',
                   'memory_plan': p.state.get('plan', {}).get('lines', []),
                   'updates_per_epoch': int(xp.cfg.optim.updates_per_epoch),
                   'batch_size': int(xp.cfg.dataset.batch_size),
                   'accumulate': int(xp.cfg.optim.get('accumulate', 1) or 1),
                   'epochs': int(xp.cfg.optim.epochs),
                   'segment_duration': float(xp.cfg.dataset.segment_duration),
                   'soundtrack_seconds': p.seconds, 'seeds': list(SEEDS)},
        'dataset_summary': p.state.get('ingest', {}).get('summary', '')})
    p.record('report', key, started)
    return str(p.report_dir / 'index.html')


STAGE_FUNCS = {'ingest': stage_ingest, 'plan': stage_plan, 'checkpoint': stage_checkpoint, 'cache': stage_cache,
               'train': stage_train, 'export': stage_export, 'soundtrack': stage_soundtrack, 'evaluate': stage_evaluate,
               'report': stage_report}


def run(p: Pipeline) -> tp.Dict[str, str]:
    """Every stage in order; returns stage -> what it did ('up to date ...' when skipped)."""
    started = time.time()
    notes = p.check()
    p.log(f"[od.pipeline] preflight: every weight this run needs is here ({time.time() - started:.1f} s)")
    for note in notes:
        p.log(f"[od.pipeline] note: {note}")
    done = {}
    with p.dora_at():
        for stage in STAGES:
            p.log(f"[od.pipeline] {stage} ...")
            started = time.time()
            done[stage] = STAGE_FUNCS[stage](p)
            p.log(f"[od.pipeline] {stage}: {done[stage]} ({time.time() - started:.0f} s)")
            if stage == 'plan':   # the first file of the run is written once the plan holds
                write_tiny_clip_if_asked(p)
    return done


def write_tiny_clip_if_asked(p: Pipeline) -> None:
    """--clip tiny: a random tiny CLIP in <work>/checkpoints/tiny-clip (seeded, written once)."""
    if p.clip == 'tiny' and not p.tiny_clip.exists():
        from ..core.atomic import atomic_dir
        from ..inference.tiny import write_tiny_clip
        with atomic_dir(p.tiny_clip) as tmp:
            write_tiny_clip(tmp)
        p.log(f"[od.pipeline] wrote a tiny random CLIP to {p.tiny_clip} (no weights needed; real CLIP: --clip <name>)")


def report_score(p: Pipeline) -> tp.Optional[float]:
    """The video sensitivity of the last evaluation (None when it was not measured)."""
    path = p.report_dir / 'metrics.json'
    if not path.exists():
        return None
    return (json.loads(path.read_text()).get('values') or {}).get('video_sensitivity')
