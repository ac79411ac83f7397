"""The report page on its own (no training): headline table, poster frames, rhythm timelines,
checked in headless Chromium — screenshot not blank, every image and poster loaded."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from . import media
from .helpers import missing_dependency
from .test_pipeline import assert_not_blank, chromium

pytestmark = pytest.mark.slow   # media, spectrograms (AudioCraft import) and two Chromium runs: ~20 s

FPS = 25.
BEATS = np.arange(0.5, 6.0, 0.5)


@pytest.fixture(scope='module')
def report_dir(tmp_path_factory):
    """A report folder as od.pipeline lays it out: two soundtracked videos (one cut on the beat,
    one off), their own audio, the rhythm metric, posters, timelines, spectrograms."""
    from od.metrics.rhythm_files import rhythm_of_files
    from od.report.page import write_page
    from od.report.plots import poster_png, spectrogram_png, timeline_png
    base = tmp_path_factory.mktemp('report')
    folder = base / 'report'
    (folder / 'videos').mkdir(parents=True)
    (base / 'valid').mkdir()
    audio = media.clicks(BEATS, 6.0, sr=48000, channels=2)
    cuts = {'on': [1.0, 2.0, 3.0, 4.0, 5.0], 'off': [1.24, 2.24, 3.24, 4.24, 5.24]}
    for seed, (vid, times) in enumerate(cuts.items()):
        frames = media.shot_frames(times, 6.0, FPS, size=(160, 96), seed=seed)
        media.write(base / 'valid' / f'{vid}.mp4', frames, fps=FPS, audio=audio)
        media.write(folder / 'videos' / f'{vid}.mp4', frames, fps=FPS, audio=audio)
        media.write_audio(base / 'valid' / f'{vid}.wav', audio, 48000)
        media.write_audio(folder / 'videos' / f'{vid}.wav', audio, 48000)
    metrics = {'values': {}, 'skipped': {'fad_vggish': 'no VGGish checkpoint (test)'}}
    metrics['rhythm'] = rhythm_of_files([folder / 'videos' / f'{v}.wav' for v in cuts],
                                        [base / 'valid' / f'{v}.wav' for v in cuts], videos=base / 'valid', progress=False)
    metrics['values']['rhythm'] = metrics['rhythm']['rhythm']
    rows = []
    for vid in cuts:
        mp4 = folder / 'videos' / f'{vid}.mp4'
        rel = lambda p: p.relative_to(folder).as_posix()   # noqa: E731
        rows.append({'id': vid, 'video': rel(mp4), 'scores': {},
                     'spectrogram': rel(spectrogram_png(mp4.with_suffix('.wav'), folder / 'spectrograms' / f'{vid}.png')),
                     'poster': rel(poster_png(mp4, folder / 'posters' / f'{vid}.png')),
                     'timeline': rel(timeline_png(metrics['rhythm']['times'][vid], folder / 'timelines' / f'{vid}.png', vid)),
                     'rhythm': metrics['rhythm']['per_video'][vid]})
    write_page(folder, {'name': 'rhythm', 'scale': 'debug', 'sig': 'x', 'command': 'dora run ...', 'rows': rows,
                        'metrics': metrics, 'curves': None, 'config': {}})
    return folder


def test_headline_table_reads_alignment_against_chance_and_ceiling(report_dir):
    page = (report_dir / 'index.html').read_text()
    report = json.loads((report_dir / 'report.json').read_text())
    table = report['metrics']['rhythm']['alignment']['cuts']
    # the on-beat video's cuts all hit the clicks, the off-beat one's none: 0.5 for the set; both own audios
    # are the same clicks, so the ceiling and chance equal the generated value here
    assert table['generated']['hit_rate'] == 0.5 and table['ceiling']['hit_rate'] == 0.5
    assert "<th>scene cuts on a beat (±100 ms)</th><td>0.50</td><td>0.50</td><td>0.50</td>" in page
    assert 'how to read it' in page and 'not measured: no VGGish checkpoint (test)' in page
    assert page.count("poster='posters/") == 2


def test_report_shows_posters_and_timelines_in_headless_chromium(report_dir, tmp_path):
    browser = chromium()
    if browser is None:
        missing_dependency('chromium', "no chromium, chromium-browser or google-chrome on PATH")
    page = (report_dir / 'index.html').as_uri()
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
             '--disable-component-update', '--no-first-run', f'--user-data-dir={tmp_path / "profile"}',
             '--virtual-time-budget=8000']
    dom = subprocess.run([browser, *flags, '--dump-dom', page], capture_output=True, text=True, timeout=120).stdout
    assert dom.count('data-state="ok"') == 2 * 3 and 'data-state="missing"' not in dom, dom[-2000:]
    assert dom.count('data-poster="ok"') == 2
    shot = tmp_path / 'page.png'
    subprocess.run([browser, *flags, '--window-size=1100,1600', f'--screenshot={shot}', page],
                   capture_output=True, timeout=120)
    assert_not_blank(shot)
    # the video tiles show their poster: the pixels where the first tile sits are not a black box
    import matplotlib.image
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert (pixels.max(axis=2) < 0.05).mean() < 0.05   # less than 5 % of the page is black
