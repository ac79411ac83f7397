"""Trained XP -> od.export -> one loader -> od.clip / od.generate (issue: inference)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from od import export as od_export
from od.data.frames import write_video
from od.inference import load
from od.inference.tiny import write_tiny_hub

from .helpers import ROOT, colors_data, dora_run, only_xp

SR = 32000


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny CLIP-conditioned MusicGen trained by `dora run` (1-s segments), and its export."""
    base = tmp_path_factory.mktemp('inference')
    args = [*colors_data(base, duration=3.0),
            'optim.epochs=1', 'optim.updates_per_epoch=4', 'dataset.batch_size=4', 'dataset.num_workers=0',
            'dataset.segment_duration=1.0', 'generate.lm.gen_duration=1.0', 'dataset.valid.num_samples=2',
            'dataset.generate.num_samples=2', 'dataset.generate.batch_size=2', 'generate.audio.strategy=peak']
    dora_run(args, base / 'logs')
    xp = only_xp(base / 'logs')
    assert od_export.main(['--xp', str(xp), '--name', 'tiny', '--out', str(base / 'checkpoints')]) == 0
    return {'base': base, 'args': args, 'xp': xp, 'export': base / 'checkpoints' / 'tiny'}


def solver_of(trained):
    """The solver `dora run` trained, restored in this process (best state)."""
    import od.train
    previous, od.train.main.dora.dir = od.train.main.dora.dir, trained['base'] / 'logs'
    try:
        return od.train.get_solver_from_xp(od.train.main.get_xp(trained['args']), restore=True, load_best=True)
    finally:
        od.train.main.dora.dir = previous


@pytest.mark.slow
def test_export_round_trip_gives_the_solvers_tokens(trained):
    from od.metrics.code_classes import media_attributes as _attributes
    export = trained['export']
    assert sorted(p.name for p in export.iterdir()) == ['compression_state_dict.bin', 'export.json', 'state_dict.bin']
    assert not list(export.parent.glob('.*tmp*'))
    umask = os.umask(0)
    os.umask(umask)
    assert export.stat().st_mode & 0o777 == 0o777 & ~umask  # shared team folders: not mkdtemp's 0700
    assert (export / 'state_dict.bin').stat().st_mode & 0o777 == 0o666 & ~umask
    meta = json.loads((export / 'export.json').read_text())
    assert meta['conditioners']['self_wav'] == {'model': 'clip_frames', 'name': f"{trained['base']}/clip"}
    pkg = torch.load(export / 'compression_state_dict.bin', weights_only=True)
    assert pkg['od.compression'] == {'kind': 'debug', 'sample_rate': SR}  # the random codec, with its weights

    solver = solver_of(trained)
    solver.model.eval()
    video = str(trained['base'] / 'dataset' / 'test' / 'red_test_000.mp4')
    exported, from_checkpoint = load(str(export), device='cpu', cache=True), load(str(trained['xp'] / 'checkpoint.th'), device='cpu', cache=True)
    for model in (exported, from_checkpoint):
        assert model.supports('video') and model.supports('image') and not model.supports('text')
        for name, tensor in solver.compression_model.state_dict().items():
            assert torch.equal(model.compression_model.state_dict()[name], tensor), name
        model.set_generation_params(duration=1.0, top_k=50, cfg_coef=3.0)
    torch.manual_seed(0)
    expected = solver.model.generate(None, [_attributes(video, 0., 1.0, SR)], max_gen_len=25, use_sampling=True,
                                     top_k=50, cfg_coef=3.0)
    for model in (exported, from_checkpoint):
        torch.manual_seed(0)
        _, tokens = model.generate_from(media=[video], return_tokens=True)
        assert torch.equal(tokens, expected)


@pytest.mark.slow
def test_export_refuses_bad_checkpoints_and_writes_nothing(trained, tmp_path, capsys):
    good = trained['xp'] / 'checkpoint.th'
    truncated = tmp_path / 'truncated.th'
    truncated.write_bytes(good.read_bytes()[:4096])
    pkg = torch.load(good, weights_only=True)
    partial = tmp_path / 'partial.th'
    state = dict(pkg['best_state']['model'])
    state.pop(next(k for k in state if 'cross_attention' in k))
    torch.save({**pkg, 'best_state': {'model': state}}, partial)
    foreign = tmp_path / 'foreign.th'
    torch.save({'best_state': {'model': {'encoder.conv.weight': torch.zeros(2)}},
                'xp.cfg': {'solver': 'compression'}}, foreign)
    out = tmp_path / 'out'
    for bad, why in [(truncated, 'cannot be read'), (partial, 'does not load'), (foreign, "'compression' checkpoint"),
                     (tmp_path / 'missing.th', 'No checkpoint')]:
        assert od_export.main(['--checkpoint', str(bad), '--name', 'x', '--out', str(out)]) == 2
        err = capsys.readouterr().err
        assert why in err and 'Nothing was written' in err, err
    assert not out.exists() or not list(out.iterdir())
    # An existing export is only replaced on request.
    assert od_export.main(['--checkpoint', str(good), '--name', 'tiny', '--out', str(trained['export'].parent)]) == 2
    assert 'pass --overwrite' in capsys.readouterr().err


@pytest.mark.slow
def test_extension_conditions_each_chunk_on_its_own_window(trained):
    model = load(str(trained['export']), device='cpu')
    model.set_generation_params(duration=2.5, top_k=50, extend_stride=0.6)  # max_duration is 1 s
    conditioner = model.lm.condition_provider.conditioners['self_wav']
    seen = []
    original = conditioner.tokenize

    def spy(x):
        seen.extend((round(s, 3), int(n)) for p, s, n in zip(x.path, x.seek_time, x.length) if p is not None)
        return original(x)
    conditioner.tokenize = spy
    video = str(trained['base'] / 'dataset' / 'test' / 'blue_test_000.mp4')
    audio = model.generate_from(media=[video], start=0.25)
    assert audio.shape[-1] == int(2.5 * model.frame_rate) * SR // int(model.frame_rate)
    # chunks start every 0.6 s (the stride); the last one covers what is left of 2.5 s
    assert seen == [(0.25, SR), (0.85, SR), (1.45, SR), (2.05, int(17 / 25 * SR))]


def probe(path: Path):
    import av
    with av.open(str(path)) as container:
        video, audio = container.streams.video, container.streams.audio
        packets = [bytes(p) for p in container.demux(video[0]) if p.size] if video else []
        return len(video), len(audio), packets


def audio_seconds(path: Path) -> float:
    import av
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / container.streams.audio[0].rate


@pytest.mark.slow
def test_clip_scores_videos_muxes_and_skips_bad_ones(trained, tmp_path, capsys):
    from od import clip
    videos = tmp_path / 'videos'
    rng = np.random.default_rng(0)
    for name, colour in [('red', (220, 30, 30)), ('blue', (30, 30, 220))]:
        frames = np.clip(np.array(colour) + rng.normal(0, 8, (25, 64, 64, 3)), 0, 255).astype(np.uint8)
        write_video(videos / f'{name}.mp4', frames, fps=10)  # 2.5 s: longer than max_duration (1 s)
    (videos / 'broken.mp4').write_bytes(b'not a video')
    out = tmp_path / 'samples'
    assert clip.main(['--model', str(trained['export']), '--videos', str(videos), '--out', str(out),
                      '--top-k', '50', '--seed', '1', '--denoise']) == 0
    stdout = capsys.readouterr().out
    assert 'wrote 2 video(s)' in stdout and 'broken' in stdout
    (stamp,) = out.iterdir()
    assert sorted(p.name for p in stamp.iterdir()) == ['blue.mp4', 'blue.raw.wav', 'blue.wav', 'red.mp4',
                                                       'red.raw.wav', 'red.wav']  # --denoise keeps the originals
    for name in ('red', 'blue'):
        n_video, n_audio, packets = probe(stamp / f'{name}.mp4')
        assert (n_video, n_audio) == (1, 1)
        assert packets == probe(videos / f'{name}.mp4')[2]            # video stream copied unchanged
        assert abs(audio_seconds(stamp / f'{name}.mp4') - 2.5) < 0.06  # music as long as the window
        import soundfile
        assert soundfile.info(str(stamp / f'{name}.wav')).frames == int(2.5 * SR)
    # seed 003's transition test: half the frames of red, then half of blue
    out2 = tmp_path / 'transition'
    assert clip.main(['--model', str(trained['export']), '--videos', str(videos / 'red.mp4'),
                      str(videos / 'blue.mp4'), '--transition', '--duration', '2', '--out', str(out2)]) == 0
    (mixed,) = next(out2.iterdir()).glob('*.mp4')
    assert mixed.name == 'red__to__blue.mp4' and probe(mixed)[:2] == (1, 1)
    assert abs(audio_seconds(mixed) - 2.0) < 0.06


@pytest.mark.slow
def test_a_clip_run_takes_the_way_the_architecture_page_gives(trained, tmp_path):
    """docs/architecture.md's way of one video, against a real `od.clip` run on one 1-s video
    (the LM's window: AudioCraft's generation loop): every call a row names is made, by the
    function the row says, to the function it says (torch's call wrappers in between, such as
    nn.Module.__call__ and no_grad, are looked through). tests/test_architecture.py checks the
    calls in the source."""
    import os
    import sys

    from od import clip

    from .test_architecture import source_file, the_way
    write_video(tmp_path / 'videos' / 'red.mp4', np.full((10, 32, 32, 3), (220, 30, 30), np.uint8), fps=10)
    torch_dir = os.path.dirname(torch.__file__)
    calls: set = set()

    def profile(frame, event, arg):
        if event != 'call':
            return
        caller = frame.f_back
        while caller is not None and caller.f_code.co_filename.startswith(torch_dir):
            caller = caller.f_back
        if caller is not None:
            calls.add(((caller.f_code.co_filename, caller.f_code.co_qualname),
                       (frame.f_code.co_filename, frame.f_code.co_qualname)))

    sys.setprofile(profile)
    try:
        code = clip.main(['--model', str(trained['export']), '--videos', str(tmp_path / 'videos' / 'red.mp4'),
                          '--out', str(tmp_path / 'out')])
    finally:
        sys.setprofile(None)
    assert code == 0

    def key(where: str):
        return str(source_file(where).resolve()), where.split(':')[1]

    missing = [f"step {s.number}: {s.where} -> {s.runs}" for s in the_way() if (key(s.where), key(s.runs)) not in calls]
    assert not missing, "docs/architecture.md gives calls the run never made:\n  " + '\n  '.join(missing)


@pytest.mark.slow
def test_generate_cli_with_upstream_weights_from_the_hf_cache(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hf' / 'hub'))
    write_tiny_hub(tmp_path / 'hf', scales=('small',))
    env = dict(os.environ, HF_HOME=str(tmp_path / 'hf'), HF_HUB_OFFLINE='1',
               AUDIOCRAFT_REFERENCE_DIR=str(tmp_path / 'no-reference'))
    cmd = [sys.executable, '-m', 'od.generate', 'an upbeat chiptune track', '--duration', '1.5',
           '--output', str(tmp_path / 'out.wav'), '--top-k', '20']   # --model defaults to facebook/musicgen-small
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import soundfile
    info = soundfile.info(str(tmp_path / 'out.wav'))
    assert (info.samplerate, info.frames) == (SR, int(1.5 * SR))
    # The same model has no video conditioner: refused with a reason, nothing written. (In this
    # process, which sees the same cache: a second interpreter would cost ~20 s of imports.)
    from od.generate import main
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', env['AUDIOCRAFT_REFERENCE_DIR'])
    write_video(tmp_path / 'v.mp4', np.zeros((5, 64, 64, 3), np.uint8), fps=5)
    assert main(cmd[3:-4] + ['--video', str(tmp_path / 'v.mp4'), '--output', str(tmp_path / 'v.wav')]) == 2
    assert 'no conditioner for video input' in capsys.readouterr().err
    assert not (tmp_path / 'v.wav').exists()


@pytest.mark.slow
def test_generate_from_an_image_with_an_export(trained, tmp_path):
    from PIL import Image

    from od.generate import generate, main
    Image.fromarray(np.full((48, 48, 3), (200, 40, 40), np.uint8)).save(tmp_path / 'red.png')
    assert main(['--image', str(tmp_path / 'red.png'), '--model', str(trained['export']), '--duration', '1',
                 '--output', str(tmp_path / 'img.wav')]) == 0
    import soundfile
    assert soundfile.info(str(tmp_path / 'img.wav')).frames == SR
    model = load(str(trained['export']), device='cpu')
    with pytest.raises(ValueError, match='no text conditioner'):
        generate(model, 'a prompt')           # would be silently ignored: refused
    with pytest.raises(FileNotFoundError, match='gone.mp4'):
        generate(model, None, str(tmp_path / 'gone.mp4'))
    (tmp_path / 'corrupt.png').write_bytes(b'\x89PNG not an image')  # nulled in training; an error here
    assert main(['--image', str(tmp_path / 'corrupt.png'), '--model', str(trained['export']), '--duration', '1',
                 '--output', str(tmp_path / 'bad.wav')]) == 2
    assert not (tmp_path / 'bad.wav').exists()
