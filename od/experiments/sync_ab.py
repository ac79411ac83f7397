"""The rhythm-sync A/B (issue 38): does the video decide *when* the music moves?

The cut videos of od.data.example_sync (a hit on every cut, cut times drawn per video) go
through the user's own path, `od.pipeline --scale debug --clip tiny`, twice per seed: with the
time-aligned conditioner (`--sync`, conditioner=clipemb2music_sync) and with today's
cross-attention one, trained the same way. On the held-out videos (cut times no training video
has) each is scored by od's rhythm metric (od.metrics.rhythm): the share of cuts with a
generated onset within +-100 ms, for

- its music (`generated`),
- the same music under the other held-out videos' cuts (`chance`: what music that ignores the
  picture's timing scores),
- the time-aligned model with the video nulled (`nulled`: generated without any video),
- the videos' own audio (`ceiling`), and that audio encoded and decoded by the model's codec
  (`codec_ceiling`: the most any music this codec decodes can show),

with BCS/BHS against the videos' audio and the pipeline's video sensitivity.
"""
from __future__ import annotations

import json
import time
import typing as tp
from pathlib import Path

import numpy as np

VARIANTS = ('sync', 'cross')


def variant_pipeline(raw: Path, work: Path, variant: str, seed: int, valid_fraction: float, seconds: float,
                     log: tp.Callable[[str], None] = print, epochs: tp.Optional[int] = None):
    from ..workflow.stages import Pipeline
    overrides = [f'seed={seed}'] + ([f'optim.epochs={epochs}'] if epochs else [])
    name = f'{variant}_s{seed}' + (f'_e{epochs}' if epochs else '')
    return Pipeline(raw, name, scale='debug', overrides=overrides, clip='tiny',
                    valid_fraction=valid_fraction, soundtrack_seconds=seconds, work=work, log=log,
                    sync=variant == 'sync')


def _figures(rhythm: tp.Mapping[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    onsets, beats = rhythm['onset_alignment']['cuts'], rhythm['alignment']['cuts']
    return {'cut_onset_hit': {w: onsets[w]['hit_rate'] for w in ('generated', 'chance', 'ceiling') if w in onsets},
            'cut_beat_hit': {w: beats[w]['hit_rate'] for w in ('generated', 'chance', 'ceiling') if w in beats},
            'bcs': rhythm.get('bcs'), 'bhs': rhythm.get('bhs'), 'videos': rhythm.get('videos')}


def _hits(cuts: tp.Mapping[str, np.ndarray], events: tp.Mapping[str, np.ndarray]) -> tp.Dict[str, float]:
    """Share of cuts with an event within +-100 ms: each video with its own events, and with the
    other videos' (chance)."""
    from ..metrics.rhythm import hit_rate
    own = [hit_rate(cuts[v], events[v]) for v in cuts]
    chance = [np.mean([hit_rate(cuts[v], events[w]) for w in cuts if w != v]) for v in cuts]
    return {'generated': round(float(np.nanmean(own)), 4), 'chance': round(float(np.nanmean(chance)), 4)}


def model_figures(p, seconds: float) -> tp.Dict[str, tp.Any]:
    """What `p`'s exported model does on its held-out videos beyond the pipeline's report:

    - `nulled`: rhythm of music generated with the video nulled;
    - `codec`: rhythm of each video's own audio encoded and decoded by the model's codec (the
      most any music this codec decodes can show);
    - `tokens`: the same cut hit rates read from the codes (od.metrics.code_events: an event
      detector fitted on the training videos' own audio codes and cuts) for the generations
      with the video, with it nulled, and the videos' own audio (its ceiling)."""
    import torch
    from audiocraft.data.audio import audio_read

    from ..data.visual_rhythm import visual_rhythm
    from ..inference import load
    from ..metrics import rhythm
    from ..metrics.code_events import fit_detector, latents
    train = sorted((p.dataset / 'train').glob('*.mp4'))
    videos = sorted((p.dataset / 'valid').glob('*.mp4'))
    model = load(str(p.export_dir), device='cpu')
    codec = model.compression_model
    model.set_generation_params(duration=seconds, top_k=250)

    def own_codes(video: Path) -> tp.Tuple[torch.Tensor, tp.Any]:
        """[1, K, T] codes (and scale) of the video's own audio (ingest wrote it at the model's rate)."""
        wav, _ = audio_read(str(video.with_suffix('.wav')))                       # [C, T]
        with torch.no_grad():
            return codec.encode(wav.mean(0, keepdim=True)[None])

    def round_trip(codes: torch.Tensor, scale) -> tp.Any:
        with torch.no_grad():
            return rhythm.music_rhythm_of(codec.decode(codes, scale)[0, 0].numpy(), model.sample_rate)
    visual = {v.stem: visual_rhythm(v) for v in videos}
    cuts = {v: r.cuts for v, r in visual.items()}
    truth = {v.stem: rhythm.music_rhythm(v.with_suffix('.wav')) for v in videos}
    torch.manual_seed(0)
    _, with_video = model.generate_from(media=[str(v) for v in videos], start=0., return_tokens=True)
    torch.manual_seed(0)
    nulled_wavs, nulled = model.generate_from(media=[None] * len(videos), return_tokens=True)
    nulled_music = {v.stem: rhythm.music_rhythm_of(w.mean(0).cpu().numpy(), model.sample_rate)
                    for v, w in zip(videos, nulled_wavs)}
    own = {v.stem: own_codes(v) for v in videos}
    detector = fit_detector([latents(codec, own_codes(v)[0][0]) for v in train],
                            [visual_rhythm(v).cuts for v in train], codec.frame_rate)

    def events(codes_by_video):
        return {v: detector.events(latents(codec, c)) for v, c in codes_by_video.items()}
    stems = [v.stem for v in videos]
    tokens = {'generated': _hits(cuts, events(dict(zip(stems, with_video)))),
              'nulled': _hits(cuts, events(dict(zip(stems, nulled)))),
              'ceiling': _hits(cuts, events({v: c[0] for v, (c, _) in own.items()}))}
    return {'nulled': rhythm.rhythm_report(visual, nulled_music, truth),
            'codec': rhythm.rhythm_report(visual, {v: round_trip(*c) for v, c in own.items()}, truth),
            'tokens': tokens}


def run_variant(raw: Path, work: Path, variant: str, seed: int, valid_fraction: float = 0.35,
                seconds: float = 8.0, log: tp.Callable[[str], None] = print,
                epochs: tp.Optional[int] = None) -> tp.Dict[str, tp.Any]:
    """One pipeline run of `variant` ('sync' or 'cross') and its figures."""
    from ..workflow.stages import run
    p = variant_pipeline(raw, work, variant, seed, valid_fraction, seconds, log, epochs)
    start = time.time()
    run(p)
    metrics = json.loads((p.report_dir / 'metrics.json').read_text())
    out = _figures(metrics['rhythm'])
    out['video_sensitivity'] = (metrics.get('values') or {}).get('video_sensitivity')
    out['pipeline_s'] = round(time.time() - start, 1)
    extra = model_figures(p, seconds)
    nulled, codec = _figures(extra['nulled']), _figures(extra['codec'])
    out['tokens'] = extra['tokens']
    if variant == 'sync':
        out['nulled'] = {'cut_onset_hit': nulled['cut_onset_hit']['generated'],
                         'cut_beat_hit': nulled['cut_beat_hit']['generated'], 'bcs': nulled['bcs'], 'bhs': nulled['bhs']}
    out['codec_ceiling'] = {'cut_onset_hit': codec['cut_onset_hit']['generated'],
                            'cut_onset_chance': codec['cut_onset_hit'].get('chance')}
    return out


def summary(runs: tp.Mapping[str, tp.Sequence[tp.Mapping[str, tp.Any]]]) -> tp.Dict[str, tp.Any]:
    """Means over seeds of each variant's figures (and the per-seed values)."""
    def mean(values):
        values = [v for v in values if v is not None]
        return round(float(np.mean(values)), 4) if values else None
    out: tp.Dict[str, tp.Any] = {}
    for variant, rows in runs.items():
        out[variant] = {
            'generated': mean(r['cut_onset_hit'].get('generated') for r in rows),
            'chance': mean(r['cut_onset_hit'].get('chance') for r in rows),
            'ceiling': mean(r['cut_onset_hit'].get('ceiling') for r in rows),
            'beat_generated': mean(r['cut_beat_hit'].get('generated') for r in rows),
            'beat_chance': mean(r['cut_beat_hit'].get('chance') for r in rows),
            'bcs': mean(r['bcs'] for r in rows), 'bhs': mean(r['bhs'] for r in rows),
            'video_sensitivity': mean(r['video_sensitivity'] for r in rows),
            'codec_ceiling': mean(r['codec_ceiling']['cut_onset_hit'] for r in rows),
            'codec_ceiling_chance': mean(r['codec_ceiling']['cut_onset_chance'] for r in rows),
            'per_seed_generated': [r['cut_onset_hit'].get('generated') for r in rows],
            'tokens': {f'{which}_{k}': mean(r['tokens'][which][k] for r in rows)
                       for which in ('generated', 'nulled', 'ceiling') for k in ('generated', 'chance')},
        }
        if all('nulled' in r for r in rows):
            out[variant]['nulled'] = mean(r['nulled']['cut_onset_hit'] for r in rows)
            out[variant]['nulled_bcs'] = mean(r['nulled']['bcs'] for r in rows)
            out[variant]['nulled_bhs'] = mean(r['nulled']['bhs'] for r in rows)
    return out
