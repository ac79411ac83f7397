"""od.pipeline end to end on tiny models: killed mid-training and resumed with no finished stage
redone, the report's numbers read back from their files, the page checked in headless Chromium,
and od.generate stopping at a video's end."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from od.core.environment import CONFIG_DIR, ROOT

from .helpers import dora_env, missing_dependency, wait_for

pytestmark = pytest.mark.slow

FAST = ['optim.epochs=3', 'optim.updates_per_epoch=4', 'dataset.valid.num_samples=2']


def read_state(report_dir):
    return json.loads((report_dir / 'pipeline.json').read_text())


@pytest.fixture(scope='module')
def pipeline_run(tmp_path_factory):
    """Run the pipeline on raw colour music videos, SIGKILL it after its first training epoch,
    run it again to the end; returns what both runs printed and left."""
    from od.data.example_video import write_raw_videos
    from od.inference.tiny import write_tiny_clip
    base = tmp_path_factory.mktemp('pipeline')
    raw = write_raw_videos(base / 'raw', per_class=3, duration=3.0, progress=False)
    (raw / 'readme.pdf').write_bytes(b'%PDF')  # not media: reported, not fatal
    clip = write_tiny_clip(base / 'clip')
    name = f'test_{uuid.uuid4().hex[:8]}'
    cmd = [sys.executable, '-m', 'od.pipeline', str(raw), '--name', name, '--scale', 'debug', '--clip', str(clip),
           '--work', str(base / 'work'), '--valid-fraction', '0.34', *FAST]
    env = dora_env(base / 'dora')
    report_dir = base / 'work' / 'reports' / name
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)

    def one_epoch_done():
        return any(len(json.loads(h.read_text())) >= 1 for h in (base / 'dora' / 'xps').glob('*/history.json'))
    wait_for(one_epoch_done, 600, first)
    state_before = read_state(report_dir)
    os.killpg(first.pid, signal.SIGKILL)
    first_out = first.communicate(timeout=60)[0]
    xp = next((base / 'dora' / 'xps').iterdir())
    history_before = json.loads((xp / 'history.json').read_text())
    started = time.time()
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    return {'base': base, 'name': name, 'report_dir': report_dir, 'xp': xp, 'first': first_out,
            'second': second.stdout + second.stderr, 'state_before': state_before,
            'history_before': history_before, 'resume_seconds': time.time() - started}


def test_killed_pipeline_resumes_without_redoing_finished_stages(pipeline_run):
    out, before = pipeline_run['second'], pipeline_run['state_before']
    assert '[od.pipeline] ingest: up to date' in out and '[od.pipeline] cache: up to date' in out
    after = read_state(pipeline_run['report_dir'])
    assert after['ingest'] == before['ingest'] and after['cache'] == before['cache']
    assert 'resuming at epoch' in out
    history = json.loads((pipeline_run['xp'] / 'history.json').read_text())
    assert len(history) == 3 and history[:len(pipeline_run['history_before'])] == pipeline_run['history_before']
    # the XP is the one the printed hand-typed command makes
    assert f"XP {pipeline_run['xp'].name}" in out and 'dora run solver=musicgen/video_debug' in out
    # under --work the manifests are named to Dora directly: no dset config in the checkout
    assert f"datasource.train={pipeline_run['base'] / 'work' / 'egs' / pipeline_run['name'] / 'train'}" in out
    assert not (CONFIG_DIR / 'dset' / 'audio' / f"{pipeline_run['name']}.yaml").exists()
    assert '.pdf 1' in pipeline_run['first']  # the ingest summary reports what it did not take


def test_report_numbers_come_from_their_files(pipeline_run):
    from od.metrics.audio_features import log_mel_stats
    from od.metrics.video_sensitivity import video_sensitivity
    report_dir = pipeline_run['report_dir']
    report = json.loads((report_dir / 'report.json').read_text())
    metrics = json.loads((report_dir / 'metrics.json').read_text())
    assert report['metrics'] == metrics and report['sig'] == pipeline_run['xp'].name
    files = metrics['files']['video_sensitivity']
    again = video_sensitivity({v: [log_mel_stats(f) for f in paths] for v, paths in files.items()})
    assert np.isclose(again['score'], metrics['values']['video_sensitivity'])
    assert set(metrics['skipped']) >= {'fad_vggish', 'fad_clap', 'clap_score'}  # no weights here: said why
    page = (report_dir / 'index.html').read_text()
    assert f"video sensitivity {again['score']:.2f}" in page
    valid = sorted(p.stem for p in (pipeline_run['base'] / 'work' / 'dataset' / pipeline_run['name'] / 'valid').glob('*.mp4'))
    assert [r['id'] for r in report['rows']] == valid and len(valid) >= 2
    for row in report['rows']:
        assert (report_dir / row['video']).is_file() and (report_dir / row['spectrogram']).is_file()
        assert (report_dir / row['poster']).is_file() and (report_dir / row['timeline']).is_file()
        assert json.dumps(row['rhythm']) == json.dumps(metrics['rhythm']['per_video'][row['id']])  # NaN-safe
        assert row['scores']['video sensitivity'] == pytest.approx(again['per_video'][row['id']]['score'])
    # rhythm: the soundtracks against the valid videos, with chance (2+ videos) and ceiling (their own audio)
    assert set(metrics['rhythm']['alignment']['all']) == {'generated', 'chance', 'ceiling'}
    assert metrics['values'].get('rhythm') == metrics['rhythm']['alignment']['all']['generated']['hit_rate']
    assert 'visual events on a beat' in page and 'how to read it' in page
    assert report['curves'] and (report_dir / report['curves']).is_file()


def chromium():
    return shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')


def test_report_renders_in_headless_chromium(pipeline_run, tmp_path):
    browser = chromium()
    if browser is None:
        missing_dependency('chromium')
    page = pipeline_run['report_dir'] / 'index.html'
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
             '--disable-component-update', '--no-first-run', f'--user-data-dir={tmp_path / "profile"}',
             '--virtual-time-budget=8000', '--autoplay-policy=no-user-gesture-required']
    dom = subprocess.run([browser, *flags, '--dump-dom', page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    report = json.loads((pipeline_run['report_dir'] / 'report.json').read_text())
    media = len(report['rows']) * 3 + 1  # a video, a spectrogram and a rhythm timeline per row, the training curves
    assert dom.count('data-state="ok"') == media and 'data-state="missing"' not in dom, dom[-2000:]
    assert dom.count('data-poster="ok"') == len(report['rows'])  # every tile shows its poster frame
    shot = tmp_path / 'page.png'
    subprocess.run([browser, *flags, '--window-size=1100,1400', f'--screenshot={shot}', page.as_uri()],
                   capture_output=True, timeout=120)
    assert_not_blank(shot)


def assert_not_blank(png, min_colours=200):
    """A screenshot that shows pictures, not an empty page: many distinct colours, not all white."""
    import matplotlib.image
    pixels = (matplotlib.image.imread(png)[..., :3] * 255).astype(np.uint8).reshape(-1, 3)   # [H*W, 3]
    colours = len(np.unique(pixels, axis=0))
    assert colours >= min_colours and (pixels < 250).any(axis=1).mean() > 0.05, (png, colours)


def test_generate_stops_at_the_video_end(pipeline_run, tmp_path):
    import soundfile as sf

    from od.data.frames import video_duration
    from od.generate import main
    video = next((pipeline_run['base'] / 'work' / 'dataset' / pipeline_run['name'] / 'valid').glob('*.mp4'))
    out = tmp_path / 'g.wav'
    model = pipeline_run['base'] / 'work' / 'checkpoints' / pipeline_run['name']
    assert main(['--video', str(video), '--start', '2', '--duration', '10', '--model', str(model),
                 '--output', str(out)]) == 0
    seconds = sf.info(out).duration
    assert abs(seconds - (video_duration(video) - 2)) < 0.05, seconds  # like od.clip: not 10 s


def test_weighted_metrics_join_the_report_when_their_weights_exist(pipeline_run, tmp_path):
    """FAD and KAD on CLAP embeddings are computed with a (tiny) CLAP; without VGGish weights they are skipped, saying why."""
    from od.inference.tiny import write_tiny_clap
    from od.workflow.stages import Pipeline, soundtrack_dir, weighted_metrics
    clap = write_tiny_clap(tmp_path / 'clap')
    p = Pipeline(pipeline_run['base'] / 'raw', pipeline_run['name'], 'debug', clip='tiny',
                 work=pipeline_run['base'] / 'work', clap_model=str(clap),
                 vggish_checkpoint=str(tmp_path / 'no_vggish.ckpt'))
    generated = sorted(str(f) for f in soundtrack_dir(p, 0).glob('*.wav'))
    skipped = {}
    values = weighted_metrics(p, generated, skipped)
    assert np.isfinite(values['fad_clap']) and 'fad_clap' not in skipped
    assert np.isfinite(values['kad_clap']) and 'kad_clap' not in skipped   # KAD on the same CLAP embeddings
    assert 'kad_vggish' not in values and 'no_vggish.ckpt' in skipped['kad_vggish']
    assert 'fad_vggish' not in values and 'no_vggish.ckpt' in skipped['fad_vggish']
