"""`reports/<name>/index.html`: one self-contained folder that opens in a browser.

Everything the page shows lies in the report folder and is linked relatively (the soundtracked
mp4s with their poster frames, spectrogram, rhythm-timeline and curve PNGs), so the folder can be
copied or served as it is. The top of the page is the headline table: each measure with its
chance and ceiling where it has them, and one sentence on how to read it. Each media
element marks itself `data-state="ok"` or `"missing"` once the browser has loaded it (a broken
link shows a red note instead of an empty box); tests read those marks in headless Chromium.
"""
from __future__ import annotations

import html
import json
import typing as tp
from pathlib import Path

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.5em;vertical-align:top;text-align:left}
video{width:320px;background:#000}img{max-width:100%}.score{font-size:1.6em;font-weight:bold}
.missing{outline:3px solid #c00}.headline td:nth-child(n+2):nth-child(-n+4){font-size:1.3em;font-weight:bold;white-space:nowrap}
.headline td:last-child{color:#444;font-size:.9em}.note{color:#666;font-size:.9em}pre{background:#f6f6f6;padding:.8em;overflow-x:auto;white-space:pre-wrap}
"""
# Marks each <img>/<video> once loaded or failed; a failed one gets a visible red outline.
CHECK_SCRIPT = """
function mark(el, state){el.dataset.state = state; if(state == 'missing') el.classList.add('missing');}
for (const img of document.images) {
  if (img.complete) mark(img, img.naturalWidth > 0 ? 'ok' : 'missing');
  else { img.onload = () => mark(img, 'ok'); img.onerror = () => mark(img, 'missing'); }
}
for (const v of document.querySelectorAll('video[poster]')) {   // the poster frame shown before playing
  const p = new Image();
  p.onload = () => { v.dataset.poster = p.naturalWidth > 0 ? 'ok' : 'missing'; };
  p.onerror = () => { v.dataset.poster = 'missing'; v.classList.add('missing'); };
  p.src = v.getAttribute('poster');
}
for (const v of document.querySelectorAll('video')) {
  if (v.readyState >= 1) mark(v, 'ok');
  v.addEventListener('loadedmetadata', () => mark(v, 'ok'));
  v.addEventListener('error', () => mark(v, 'missing'), true);
  for (const s of v.querySelectorAll('source')) s.addEventListener('error', () => mark(v, 'missing'));
}
"""


def _e(value: tp.Any) -> str:
    return html.escape(str(value))


def _fmt(value: tp.Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else _e(value)


def _num(value: tp.Any, digits: int = 2) -> str:
    if not isinstance(value, (int, float)) or value != value:
        return '—'
    return f"{value:.{digits}f}"


def follows_cuts(r: tp.Mapping[str, tp.Any]) -> str:
    """Whether the music's onsets follow the cuts above chance, video by video: a one-sided sign
    test of "this video's cuts are hit more by its own music than by the others'"."""
    from math import comb
    wins = ties = n = 0
    for entry in (r.get('per_video') or {}).values():
        row = entry.get('cuts_onsets') or {}
        own, other = (row.get('generated') or {}).get('hit_rate'), (row.get('chance') or {}).get('hit_rate')
        if own is None or other is None:
            continue
        n += 1
        wins += own > other
        ties += own == other
    if n - ties < 2:
        return "Needs at least two held-out videos with cuts to compare with chance."
    trials = n - ties
    p = sum(comb(trials, k) for k in range(wins, trials + 1)) / 2 ** trials
    verdict = ("the music follows the cuts above chance" if p < 0.05 else
               "not distinguishable from chance: the music does not follow the cuts")
    return (f"Share of the video's scene cuts with an onset of its music nearby (any accent, not only a beat): "
            f"{verdict} (its own music hits its cuts more than the other videos' music in {wins} of {trials} "
            f"videos, sign test p = {p:.2g}). Chance and ceiling as above.")


def headline(metrics: tp.Mapping[str, tp.Any]) -> str:
    """The table at the top: measure | this model | chance | ceiling | how to read it."""
    skipped = metrics.get('skipped', {})
    rows = []
    sens = metrics.get('video_sensitivity') or {}
    rows.append(('video sensitivity', _num(sens.get('score')), '1', '',
                 "Distance between the music of two videos over the distance between two samples of one video: "
                 "1 means the model ignores the video; the higher, the more the video steers the music."
                 if sens else f"not measured: {skipped.get('video_sensitivity', '')}"))
    r = metrics.get('rhythm') or {}
    for kind, label in (('all', 'visual events on a beat'), ('cuts', 'scene cuts on a beat')):
        row = (r.get('alignment') or {}).get(kind, {})
        cell = {w: _num((row.get(w) or {}).get('hit_rate')) for w in ('generated', 'chance', 'ceiling')}
        how = ("Share of the video's cuts and motion peaks with a beat of its music nearby. Chance: the same "
               "videos with the other videos' music; ceiling: with their own audio. Above chance means the "
               "music follows the picture's rhythm." if kind == 'all' else
               "The same for scene cuts only (the events editors cut on the beat).")
        rows.append((f"{label} (±{r.get('tolerance', 0.1) * 1000:.0f} ms)", cell['generated'], cell['chance'], cell['ceiling'],
                     how if r else f"not measured: {skipped.get('rhythm', '')}"))
    if r and (r.get('onset_alignment') or {}).get('cuts'):
        row = r['onset_alignment']['cuts']
        cell = {w: _num((row.get(w) or {}).get('hit_rate')) for w in ('generated', 'chance', 'ceiling')}
        rows.append((f"scene cuts with an onset (±{r.get('tolerance', 0.1) * 1000:.0f} ms)", cell['generated'],
                     cell['chance'], cell['ceiling'], follows_cuts(r)))
    if r:
        rows.append(('BCS / BHS', f"{_num(r.get('bcs'))} / {_num(r.get('bhs'))}", '', '1 / 1',
                     "Beat Coverage and Beat Hit Scores (D2M-GAN) of the music against the video's own audio, in 1 s "
                     "bins: BCS near 1 means as many beats as the original; BHS is the share of its beats the music hits."))
    values = metrics.get('values', {})
    for name, label, how in (('fad_vggish', 'FAD (VGGish)', "Fréchet distance to the videos' own audio; lower is closer."),
                             ('kad_vggish', 'KAD (VGGish)', "Kernel distance: like FAD, without its small-sample bias."),
                             ('fad_clap', 'FAD (CLAP)', "Fréchet distance on CLAP embeddings; lower is closer."),
                             ('kad_clap', 'KAD (CLAP)', "Kernel distance on CLAP embeddings; about 0 = same distribution.")):
        if name in values:
            rows.append((label, _num(values[name], 3), '', '0', how))
        elif name in skipped:
            rows.append((label, '—', '', '', f"not measured: {skipped[name]}"))
    body = ''.join(f"<tr><th>{_e(a)}</th><td>{_e(b)}</td><td>{_e(c)}</td><td>{_e(d)}</td><td>{_e(how)}</td></tr>"
                   for a, b, c, d, how in rows)
    return (f"<table class='headline'><tr><th>measure</th><th>this model</th><th>chance</th><th>ceiling</th>"
            f"<th>how to read it</th></tr>{body}</table>")


def _rhythm_cell(rhythm: tp.Optional[tp.Mapping[str, tp.Any]]) -> str:
    if not rhythm:
        return ''
    out = []
    for kind, label in (('all', 'events on a beat'), ('cuts', 'cuts on a beat')):
        row = rhythm[kind]
        parts = [f"{w} <b>{_num((row.get(w) or {}).get('hit_rate'))}</b>" for w in ('generated', 'chance', 'ceiling') if w in row]
        out.append(f"<div>{label} ({row['generated']['events']}): {', '.join(parts)}</div>")
    if 'bcs' in rhythm:
        out.append(f"<div>BCS <b>{_num(rhythm['bcs'])}</b>, BHS <b>{_num(rhythm['bhs'])}</b></div>")
    out.append(f"<div>tempo {_num(rhythm.get('tempo'), 0)} bpm</div>")
    return ''.join(out)


def render(report: tp.Mapping[str, tp.Any]) -> str:
    """The page for a report dict (what od.pipeline gathers; see `write_page`)."""
    metrics = report['metrics']
    sens = metrics.get('video_sensitivity') or {}
    rows = []
    for row in report['rows']:
        scores = ''.join(f"<div>{_e(k)}: <b>{_fmt(v)}</b></div>" for k, v in row['scores'].items())
        poster = f" poster='{_e(row['poster'])}'" if row.get('poster') else ''
        timeline = (f"<img alt='rhythm timeline of {_e(row['id'])}' src='{_e(row['timeline'])}'>"
                    if row.get('timeline') else "<p class='note'>no rhythm measured</p>")
        rows.append(
            f"<tr><td><b>{_e(row['id'])}</b><div class='note'>{_e(row.get('source', ''))}</div></td>"
            f"<td><video controls preload='metadata'{poster} src='{_e(row['video'])}'></video>"
            f"<div class='note'><a href='{_e(row['video'])}'>{_e(row['video'])}</a></div></td>"
            f"<td><img alt='spectrogram of {_e(row['id'])}' src='{_e(row['spectrogram'])}'>{timeline}</td>"
            f"<td>{scores}{_rhythm_cell(row.get('rhythm'))}</td></tr>")
    measured = ''.join(f"<li>{_e(name)}: <b>{_fmt(value)}</b></li>" for name, value in metrics.get('values', {}).items())
    skipped = ''.join(f"<li>{_e(name)}: skipped — {_e(why)}</li>" for name, why in metrics.get('skipped', {}).items())
    curves = (f"<img alt='training curves' src='{_e(report['curves'])}'>" if report.get('curves')
              else "<p class='note'>No training history yet.</p>")
    score = (f"<p class='score'>video sensitivity {sens['score']:.2f}</p>"
             f"<p class='note'>Mean distance between the music of two different videos "
             f"({sens['between_videos']:.3f}) over the mean distance between two samples (seeds) of the same video "
             f"({sens['between_seeds']:.3f}), on log-mel statistics; {sens['videos']} videos x {sens['seeds']} samples. "
             "Above 1: the video steers the music.</p>") if sens else \
        f"<p class='note'>video sensitivity not measured: {_e(metrics.get('skipped', {}).get('video_sensitivity', ''))}</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>od report: {_e(report['name'])}</title>
<style>{STYLE}</style></head><body>
<h1>{_e(report['name'])}: soundtracks made from the videos</h1>
<p>Music generated by the model trained on <code>{_e(report['name'])}</code> for each validation video
(never seen in training), muxed under the video. Scale <code>{_e(report['scale'])}</code>,
XP <code>{_e(report['sig'])}</code>.</p>
{headline(metrics)}
{score}
<h2>Measures</h2><ul>{measured}{skipped}</ul>
<h2>Videos</h2>
<table><tr><th>video</th><th>soundtrack</th><th>spectrogram of the music; its beats under the video's cuts and motion</th><th>scores</th></tr>
{''.join(rows)}</table>
<h2>Training</h2>{curves}
<h2>Run</h2><p>Reproduce the training by hand (same XP signature):</p><pre>{_e(report['command'])}</pre>
<pre>{_e(json.dumps(report['config'], indent=1))}</pre>
<p class='note'>{_e(report.get('dataset_summary', ''))}</p>
<script>{CHECK_SCRIPT}</script>
</body></html>
"""


def write_page(folder: tp.Union[str, Path], report: tp.Mapping[str, tp.Any]) -> Path:
    """Write `folder/index.html` (atomically) and `folder/report.json` (the numbers shown)."""
    from ..core.atomic import write_json, write_text
    folder = Path(folder)
    write_json(folder / 'report.json', report)
    return write_text(folder / 'index.html', render(report))
