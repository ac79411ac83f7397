"""Clean-up of generated audio: spectral gating, a learned denoiser by path, both CLIs' and the
training samples' --denoise (issue 17)."""
from __future__ import annotations

import types

import numpy as np
import pytest
import soundfile
import torch
from omegaconf import OmegaConf

from od.data.denoise import build_denoiser, denoise_copy, denoise_file, raw_path, snr_db

SR = 32000


def tone_bursts(seconds: float = 4.0) -> np.ndarray:
    """Notes with gaps between them (music-like onsets and silences), peak 0.5."""
    t = np.arange(int(seconds * SR)) / SR
    signal = np.zeros_like(t)
    for k, start in enumerate(np.arange(0.1, seconds - 0.4, 0.5)):
        on = (t >= start) & (t < start + 0.25)
        signal[on] = 0.5 * np.sin(2 * np.pi * (330 + 55 * (k % 4)) * t[on]) * np.hanning(on.sum())
    return signal


def test_spectral_gating_raises_the_snr_of_noisy_bursts():
    clean = tone_bursts()
    noise = np.random.default_rng(0).standard_normal(len(clean)) * np.sqrt(np.mean(clean ** 2))   # 0 dB
    noisy = (clean + noise).astype(np.float32)
    for spec in ('spectral', 'stationary'):
        out = build_denoiser(spec)(noisy, SR)
        assert out.shape == noisy.shape
        gain = snr_db(clean, out) - snr_db(clean, noisy)
        print(f"{spec}: SNR {snr_db(clean, noisy):.2f} -> {snr_db(clean, out):.2f} dB")
        assert gain > 2.0, (spec, gain)
    assert np.array_equal(build_denoiser('spectral', strength=0.0)(noisy, SR), noisy)
    with pytest.raises(ValueError, match='strength'):
        build_denoiser('spectral', strength=1.5)
    assert build_denoiser(None) is None


def test_learned_denoiser_loads_plain_weights_only(tmp_path):
    from denoiser.demucs import Demucs
    torch.manual_seed(0)
    model = Demucs(hidden=8, depth=3)
    torch.save(model.state_dict(), tmp_path / 'tiny.th')
    wav = 0.1 * np.random.default_rng(1).standard_normal((2, SR)).astype(np.float32)   # stereo, 32 kHz
    denoiser = build_denoiser(str(tmp_path / 'tiny.th'), strength=1.0)
    out = denoiser(wav, SR)
    assert out.shape == wav.shape and np.isfinite(out).all() and not np.allclose(out, wav)
    # The same weights give the same output: the architecture was read back from the shapes.
    import julius
    with torch.no_grad():
        x16 = julius.resample_frac(torch.from_numpy(wav[:1]), SR, 16000)
        expected = julius.resample_frac(model(x16[None])[0], 16000, SR)[..., :SR].numpy()
    assert np.allclose(out[:1, :expected.shape[-1]], expected, atol=1e-5)
    assert np.array_equal(build_denoiser(str(tmp_path / 'tiny.th'), strength=0.)(wav, SR), wav)
    torch.save(model, tmp_path / 'pickled.th')                       # a whole pickled module: never executed
    with pytest.raises(ValueError, match='holds pickled Python objects'):
        build_denoiser(str(tmp_path / 'pickled.th'))
    with pytest.raises(FileNotFoundError, match='--denoise spectral'):
        build_denoiser(str(tmp_path / 'missing.th'))


def test_denoise_file_keeps_the_original_and_training_samples_get_copies(tmp_path):
    from od.solvers.samples import MediaSampleManager
    wav = (tone_bursts(2.0) + 0.05 * np.random.default_rng(2).standard_normal(2 * SR)).astype(np.float32)
    path = tmp_path / 'out.wav'
    soundfile.write(str(path), wav, SR, subtype='PCM_16')
    original = path.read_bytes()
    clean, raw = denoise_file(path, build_denoiser('spectral'))
    assert raw == raw_path(path) == tmp_path / 'out.raw.wav' and raw.read_bytes() == original
    cleaned, sr = soundfile.read(str(clean))
    assert sr == SR and len(cleaned) == len(wav) and soundfile.info(str(clean)).subtype == 'PCM_16'
    assert np.std(cleaned) < np.std(wav)
    assert denoise_copy(raw, tmp_path / 'copy' / 'x.wav', build_denoiser('stationary')).exists()

    cfg = OmegaConf.create({'sample_rate': SR, 'generate': {
        'path': 'samples', 'denoise': 'spectral', 'denoise_strength': 0.8,
        'audio': {'format': 'wav', 'strategy': 'peak', 'sample_rate': SR}}})
    manager = MediaSampleManager(types.SimpleNamespace(folder=tmp_path / 'xp', cfg=cfg))
    sample = manager.add_sample(torch.from_numpy(wav)[None], epoch=3, conditions={'description': 'bursts'})
    generated = tmp_path / 'xp' / 'samples' / '3' / f"{sample.id}.wav"
    assert sample.path == str(generated) and (generated.parent / 'denoised' / generated.name).is_file()
    cfg.generate.denoise = None
    manager = MediaSampleManager(types.SimpleNamespace(folder=tmp_path / 'xp2', cfg=cfg))
    sample = manager.add_sample(torch.from_numpy(wav)[None], epoch=1, conditions={'description': 'bursts'})
    assert not (tmp_path / 'xp2' / 'samples' / '1' / 'denoised').exists()


@pytest.mark.slow
def test_generate_cli_denoise(tmp_path, capsys):
    from od.generate import main

    from .test_hf_export import text_checkpoint
    checkpoint = text_checkpoint(tmp_path)
    out = tmp_path / 'gen.wav'
    assert main(['a calm piano piece', '--model', str(checkpoint), '--duration', '1', '--top-k', '20',
                 '--output', str(out), '--denoise']) == 0
    assert 'the original is' in capsys.readouterr().out
    raw = tmp_path / 'gen.raw.wav'
    assert soundfile.info(str(out)).frames == soundfile.info(str(raw)).frames == SR
    assert not np.array_equal(soundfile.read(str(out))[0], soundfile.read(str(raw))[0])
    # A learned denoiser that is not there stops the command before the model loads.
    assert main(['x', '--model', str(checkpoint), '--output', str(tmp_path / 'no.wav'),
                 '--denoise', str(tmp_path / 'none.th')]) == 2
    assert not (tmp_path / 'no.wav').exists()
