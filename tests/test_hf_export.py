"""od.export --format transformers: a T5 text model as a transformers MusicGen folder (issue 17)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from od import export as od_export
from od.inference.hf_export import generation_defaults
from od.inference.tiny import write_tiny_t5

# Run by a separate interpreter that imports transformers and nothing of od or AudioCraft.
HF_ONLY = r'''
import json, sys, torch
from transformers import AutoProcessor, MusicgenForConditionalGeneration
folder = sys.argv[1]
model = MusicgenForConditionalGeneration.from_pretrained(folder).eval()
processor = AutoProcessor.from_pretrained(folder)
torch.manual_seed(0)
audio = model.generate(**processor(text=['a calm piano piece', 'drums'], padding=True, return_tensors='pt'))
print(json.dumps({'shape': list(audio.shape), 'finite': bool(torch.isfinite(audio).all()),
                  'rms': float(audio.pow(2).mean().sqrt()), 'sampling_rate': model.config.sampling_rate,
                  'od_imported': any(m == 'od' or m.startswith(('od.', 'audiocraft')) for m in sys.modules)}))
'''


def text_checkpoint(base: Path, overrides=(), seed: int = 0) -> Path:
    """A tiny T5 text-to-music LM (debug solver, AudioCraft's debug EnCodec) whose every tensor is
    random, so a swapped norm, a transposed projection or a missing bias cannot go unseen."""
    from audiocraft.models import builders

    import od.train
    from od.conditioners import registry
    t5 = write_tiny_t5(base / 't5')
    registry.install()
    cfg = od.train.main.get_xp(['solver=musicgen/debug', 'conditioner=text2music',
                                f'conditioners.description.t5.name={t5}', *overrides]).cfg
    cfg.device = 'cpu'
    torch.manual_seed(seed)
    lm = builders.get_lm_model(cfg)
    state = {k: v + 0.05 * torch.randn_like(v) for k, v in lm.state_dict().items()}
    path = base / 'text.th'
    torch.save({'best_state': state, 'xp.cfg': OmegaConf.to_yaml(cfg)}, path)
    return path


@pytest.fixture(scope='module')
def hf_export(tmp_path_factory):
    base = tmp_path_factory.mktemp('hf_export')
    checkpoint = text_checkpoint(base)
    assert od_export.main(['--checkpoint', str(checkpoint), '--format', 'transformers', '--name', 'hf',
                           '--out', str(base / 'out'), '--top-k', '50', '--duration', '1']) == 0
    return {'base': base, 'checkpoint': checkpoint, 'folder': base / 'out' / 'hf'}


@pytest.mark.slow
def test_transformers_logits_and_greedy_generation_match_od(hf_export):
    from audiocraft.modules.conditioners import ConditioningAttributes
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    from od.inference import load
    folder = hf_export['folder']
    assert {'config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json',
            'od_export.json'} <= {p.name for p in folder.iterdir()}
    assert not list(folder.parent.glob('.*tmp*'))
    info = json.loads((folder / 'od_export.json').read_text())
    assert info['generation']['top_k'] == 50 and info['generation']['guidance_scale'] == 3.0
    assert info['duration_s'] == 1.0 and info['logits_check']['max_abs_diff_null'] < 1e-4
    # Without --duration: od.generate's 10 s, capped at the training segment (the debug model's 4 s).
    assert generation_defaults({'dataset': {'segment_duration': 4}}, 25, 4, 400)['max_new_tokens'] == 100 + 3
    assert generation_defaults({}, 50, 4, 2048)['max_new_tokens'] == 500 + 3

    od_model = load(str(hf_export['checkpoint']), device='cpu')
    hf = MusicgenForConditionalGeneration.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    lm = od_model.lm
    codes = torch.randint(0, lm.card + 1, (1, lm.num_codebooks, 12), generator=torch.Generator().manual_seed(1))
    prompt = 'energetic rock with distorted guitars'
    with torch.no_grad():
        provider = lm.condition_provider
        ours = lm(codes, [], provider(provider.tokenize([ConditioningAttributes(text={'description': prompt})])))
        theirs = hf(**processor(text=[prompt], return_tensors='pt'), decoder_input_ids=codes.reshape(-1, 12)).logits
    diff = float((ours - theirs.reshape(ours.shape)).abs().max())
    print(f"max |logit difference| od vs transformers: {diff:.3g} (logits up to {float(ours.abs().max()):.3g})")
    assert diff < 1e-4

    # Greedy decoding with classifier-free guidance: the same codes, hence the same audio.
    frames = 20
    with torch.no_grad():
        tokens = lm.generate(None, [ConditioningAttributes(text={'description': prompt})], max_gen_len=frames,
                             use_sampling=False, cfg_coef=3.0)
        expected = od_model.compression_model.decode(tokens)                           # [1, 1, T]
        audio = hf.generate(**processor(text=[prompt], return_tensors='pt'), do_sample=False,
                            guidance_scale=3.0, max_new_tokens=frames + lm.num_codebooks - 1)
    assert audio.shape == expected.shape
    assert torch.allclose(audio, expected, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.slow
def test_generate_with_transformers_alone(hf_export):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH='')
    proc = subprocess.run([sys.executable, '-c', HF_ONLY, str(hf_export['folder'])], capture_output=True, text=True,
                          timeout=300, env=env, cwd=hf_export['base'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['shape'] == [2, 1, 32000] and out['sampling_rate'] == 32000   # generation_config: 1 s
    assert out['finite'] and out['rms'] > 0 and not out['od_imported']


@pytest.mark.slow
def test_refused_models_write_nothing(hf_export, tmp_path, capsys):
    import od.train
    good = hf_export['checkpoint']
    truncated = tmp_path / 'truncated.th'
    truncated.write_bytes(good.read_bytes()[:4096])
    state = torch.load(good, weights_only=True)['best_state']
    refused = {'truncated': (truncated, 'cannot be read')}
    for name, conditioner, why in [('clip', 'clipemb2music', 'CLIP'), ('genre', 'genre2music', "'lut'")]:
        cfg = od.train.main.get_xp(['solver=musicgen/debug', f'conditioner={conditioner}']).cfg
        path = tmp_path / f'{name}.th'
        torch.save({'best_state': state, 'xp.cfg': OmegaConf.to_yaml(cfg)}, path)
        refused[name] = (path, why)
    pattern = tmp_path / 'parallel.th'
    pkg = torch.load(good, weights_only=True)
    cfg = OmegaConf.create(pkg['xp.cfg'])
    cfg.codebooks_pattern.modeling = 'parallel'
    torch.save({**pkg, 'xp.cfg': OmegaConf.to_yaml(cfg)}, pattern)
    refused['pattern'] = (pattern, "pattern is 'parallel'")
    out = tmp_path / 'out'
    for name, (path, why) in refused.items():
        assert od_export.main(['--checkpoint', str(path), '--format', 'transformers', '--name', name,
                               '--out', str(out)]) == 2, name
        err = capsys.readouterr().err
        assert why in err and 'Nothing was written' in err, err
    assert not out.exists() or not list(out.iterdir())
    assert od_export.main(['--checkpoint', str(good), '--format', 'transformers', '--name', 'hf',
                           '--out', str(hf_export['folder'].parent)]) == 2
    assert 'pass --overwrite' in capsys.readouterr().err


@pytest.mark.slow
def test_codec_conversion_is_exact_or_refused():
    from audiocraft.models.encodec import EncodecModel, HFEncodecCompressionModel
    from audiocraft.modules.seanet import SEANetDecoder, SEANetEncoder
    from audiocraft.quantization.vq import ResidualVectorQuantizer
    from transformers import EncodecConfig
    from transformers import EncodecModel as HFEncodecModel

    from od.encoders.compression import build_compression_model
    from od.encoders.hf_encodec import CodecNotExportable, check_codec, to_hf_encodec
    debug = build_compression_model('//pretrained/debug_compression_model', seed=3)   # 400 codes, no LSTM, no norm
    hf = to_hf_encodec(debug)
    assert hf.config.codebook_size == 512 and hf.config.num_quantizers == 4
    assert check_codec(debug, hf) < 1e-5
    wav = 0.1 * torch.randn(1, 1, 32000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = hf.encode(wav, bandwidth=hf.config.target_bandwidths[-1]).audio_codes[0]
        assert torch.equal(debug.encode(wav)[0], theirs)
    # An EnCodec already in transformers' form is taken as it is.
    config = EncodecConfig(target_bandwidths=[1.2], sampling_rate=32000, num_filters=4, upsampling_ratios=[8, 5, 4, 4],
                           codebook_size=64, codebook_dim=16, hidden_size=16, num_lstm_layers=1)
    wrapped = HFEncodecCompressionModel(HFEncodecModel(config).eval())
    assert check_codec(wrapped, to_hf_encodec(wrapped)) == 0.
    # Time-group norm has no exact form here: refused with the reason.
    seanet = dict(n_filters=4, ratios=[8, 4], dimension=16, norm='time_group_norm')
    grouped = EncodecModel(SEANetEncoder(**seanet), SEANetDecoder(**seanet),
                           ResidualVectorQuantizer(dimension=16, bins=16, n_q=2), frame_rate=1000, sample_rate=32000,
                           channels=1)
    with pytest.raises(CodecNotExportable, match='time_group_norm'):
        to_hf_encodec(grouped)
    with pytest.raises(CodecNotExportable, match='Hugging Face EnCodec'):
        to_hf_encodec(torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_upstream_musicgen_with_a_hf_encodec_exports(tmp_path, monkeypatch):
    """facebook/musicgen-small's layout (tiny weights) in a Hugging Face cache, exported by hub id:
    its compression model is a transformers EnCodec already, taken as it is."""
    import huggingface_hub.constants

    from od.inference.tiny import write_tiny_hub
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hf' / 'hub'))
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', str(tmp_path / 'no-reference'))
    write_tiny_hub(tmp_path / 'hf', scales=('small',))
    assert od_export.main(['--checkpoint', 'facebook/musicgen-small', '--format', 'transformers',
                           '--out', str(tmp_path / 'out'), '--duration', '1']) == 0
    info = json.loads((tmp_path / 'out' / 'musicgen-small' / 'od_export.json').read_text())
    assert info['codec_relative_decode_diff'] == 0.0 and info['frame_rate'] == 50.0
    assert max(info['logits_check']['max_abs_diff_prompt'], info['logits_check']['max_abs_diff_null']) < 1e-4
    assert info['generation']['max_new_tokens'] == 50 + 3
