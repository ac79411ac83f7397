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

VARIANTS = ('sync', 'cross')


def variant_pipeline(raw: Path, work: Path, variant: str, seed: int, valid_fraction: float, seconds: float,
                     log: tp.Callable[[str], None] = print):
    from ..workflow.stages import Pipeline
    return Pipeline(raw, f'{variant}_s{seed}', scale='debug', overrides=[f'seed={seed}'], clip='tiny',
                    valid_fraction=valid_fraction, soundtrack_seconds=seconds, work=work, log=log,
                    sync=variant == 'sync')


def _figures(rhythm: tp.Mapping[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    onsets, beats = rhythm['onset_alignment']['cuts'], rhythm['alignment']['cuts']
    return {'cut_onset_hit': {w: onsets[w]['hit_rate'] for w in ('generated', 'chance', 'ceiling') if w in onsets},
            'cut_beat_hit': {w: beats[w]['hit_rate'] for w in ('generated', 'chance', 'ceiling') if w in beats},
            'bcs': rhythm.get('bcs'), 'bhs': rhythm.get('bhs'), 'videos': rhythm.get('videos')}


def model_rhythms(p, seconds: float) -> tp.Tuple[tp.Dict[str, tp.Any], tp.Dict[str, tp.Any]]:
    """(nulled, codec) rhythm reports on `p`'s held-out videos, from its exported model: music
    generated with the video nulled, and each video's own audio through the model's codec
    (encoded, decoded): the ceiling of any music this codec decodes."""
    import torch
    from audiocraft.data.audio import audio_read

    from ..data.visual_rhythm import visual_rhythm
    from ..inference import load
    from ..metrics import rhythm
    videos = sorted((p.dataset / 'valid').glob('*.mp4'))
    model = load(str(p.export_dir), device='cpu')
    model.set_generation_params(duration=seconds, top_k=250)
    torch.manual_seed(0)
    wavs = model.generate_from(media=[None] * len(videos))                       # [B, C, T]
    music = {v.stem: rhythm.music_rhythm_of(w.mean(0).cpu().numpy(), model.sample_rate) for v, w in zip(videos, wavs)}
    visual = {v.stem: visual_rhythm(v) for v in videos}
    truth = {v.stem: rhythm.music_rhythm(v.with_suffix('.wav')) for v in videos}
    codec = {}
    for v in videos:
        wav, sr = audio_read(str(v.with_suffix('.wav')))                          # [C, T] at the model's rate
        with torch.no_grad():
            codes, scale = model.compression_model.encode(wav.mean(0, keepdim=True)[None])
            codec[v.stem] = rhythm.music_rhythm_of(model.compression_model.decode(codes, scale)[0, 0].numpy(), sr)
    return rhythm.rhythm_report(visual, music, truth), rhythm.rhythm_report(visual, codec, truth)


def run_variant(raw: Path, work: Path, variant: str, seed: int, valid_fraction: float = 0.35,
                seconds: float = 8.0, log: tp.Callable[[str], None] = print) -> tp.Dict[str, tp.Any]:
    """One pipeline run of `variant` ('sync' or 'cross') and its figures."""
    from ..workflow.stages import run
    p = variant_pipeline(raw, work, variant, seed, valid_fraction, seconds, log)
    start = time.time()
    run(p)
    metrics = json.loads((p.report_dir / 'metrics.json').read_text())
    out = _figures(metrics['rhythm'])
    out['video_sensitivity'] = (metrics.get('values') or {}).get('video_sensitivity')
    out['pipeline_s'] = round(time.time() - start, 1)
    nulled, codec = (_figures(r) for r in model_rhythms(p, seconds))
    if variant == 'sync':
        out['nulled'] = {'cut_onset_hit': nulled['cut_onset_hit']['generated'],
                         'cut_beat_hit': nulled['cut_beat_hit']['generated'], 'bcs': nulled['bcs'], 'bhs': nulled['bhs']}
    out['codec_ceiling'] = {'cut_onset_hit': codec['cut_onset_hit']['generated'],
                            'cut_onset_chance': codec['cut_onset_hit'].get('chance')}
    return out


def summary(runs: tp.Mapping[str, tp.Sequence[tp.Mapping[str, tp.Any]]]) -> tp.Dict[str, tp.Any]:
    """Means over seeds of each variant's figures (and the per-seed values)."""
    import numpy as np

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
        }
        if all('nulled' in r for r in rows):
            out[variant]['nulled'] = mean(r['nulled']['cut_onset_hit'] for r in rows)
            out[variant]['nulled_bcs'] = mean(r['nulled']['bcs'] for r in rows)
            out[variant]['nulled_bhs'] = mean(r['nulled']['bhs'] for r in rows)
    return out
