"""Offline weights: found in the HF cache or the reference dir, or a fast error naming the file."""
from __future__ import annotations

import subprocess
import time

import pytest

from od.core.environment import MissingWeightsError
from od.encoders.compression import resolve_compression_checkpoint

from .helpers import ENCODEC, FAST, ROOT, datasource_overrides, dora_cmd, dora_env, tiny_hf_encodec


@pytest.fixture
def empty_places(tmp_path, monkeypatch):
    """An empty HF cache and an empty reference dir."""
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hf'))
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', str(tmp_path / 'reference'))
    return tmp_path


def test_missing_encodec_is_a_fast_clear_error(empty_places):
    import audiocraft.environment  # noqa: F401  (time the lookup, not the first torch import)
    start = time.time()
    with pytest.raises(MissingWeightsError) as err:
        resolve_compression_checkpoint(f'//pretrained/{ENCODEC}')
    assert time.time() - start < 5
    msg = str(err.value)
    assert ENCODEC in msg and 'config.json' in msg and str(empty_places / 'reference' / ENCODEC) in msg
    with pytest.raises(MissingWeightsError, match='nope.th'):
        resolve_compression_checkpoint('//reference/nope.th')


def test_resolution_order(empty_places):
    assert resolve_compression_checkpoint('//pretrained/debug_compression_model') == \
        '//pretrained/debug_compression_model'
    tiny_hf_encodec(empty_places / 'hf')
    assert resolve_compression_checkpoint(f'//pretrained/{ENCODEC}') == f'//pretrained/{ENCODEC}'
    exported = empty_places / 'reference' / ENCODEC
    exported.mkdir(parents=True)
    (exported / 'compression_state_dict.bin').write_bytes(b'x')
    assert resolve_compression_checkpoint(f'//pretrained/{ENCODEC}') == f'//pretrained/{exported}'


@pytest.mark.slow
def test_dora_run_without_weights_says_where_to_put_them(example_data, tmp_path):
    env = dora_env(tmp_path / 'logs')
    env.update(HF_HOME=str(tmp_path / 'empty_hf'), AUDIOCRAFT_REFERENCE_DIR=str(tmp_path / 'ref'))
    start = time.time()
    proc = subprocess.run(dora_cmd('solver=musicgen/debug', f'compression_model_checkpoint=//pretrained/{ENCODEC}',
                                   *FAST, *datasource_overrides(example_data)),
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert time.time() - start < 120
    out = proc.stdout + proc.stderr
    assert f"Weights for '{ENCODEC}' are not on this machine" in out
    assert str(tmp_path / 'ref' / ENCODEC) in out
