"""od's `t5` conditioner loads any T5 from local places, through the registry, or says why not."""
from __future__ import annotations

import pytest
import torch

from od.conditioners import registry
from od.inference.tiny import write_tiny_t5


@pytest.fixture(scope='module')
def tiny_t5(tmp_path_factory):
    return write_tiny_t5(tmp_path_factory.mktemp('t5') / 'tiny-t5')


def build(name, **kwargs):
    return registry.build_conditioner('t5', 16, {'name': name, 'finetune': False, **kwargs}, device='cpu')


def test_local_t5_embeds_text(tiny_t5):
    cond = build(str(tiny_t5))
    assert len(cond.t5_tokenizer) == cond.t5.config.vocab_size > 20
    embeds, mask = cond(cond.tokenize(['a calm ambient piece', 'driving drums', None]))
    assert embeds.shape[0] == 3 and embeds.shape[-1] == 16
    assert mask[2].sum() == 0 and mask[0].sum() > 1
    assert not torch.allclose(embeds[0, 0], embeds[1, 0])


def test_hub_name_found_in_reference_dir(tiny_t5, tmp_path, monkeypatch):
    import shutil
    shutil.copytree(tiny_t5, tmp_path / 'ref' / 't5-base')
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', str(tmp_path / 'ref'))
    assert build('t5-base').t5.config.d_model == 32
    assert build('//reference/t5-base').t5.config.d_model == 32


def test_broken_tokenizer_is_refused(tiny_t5, tmp_path):
    import shutil

    from transformers import AutoTokenizer, T5Tokenizer
    broken = tmp_path / 'broken'
    shutil.copytree(tiny_t5, broken)
    pieces = list(AutoTokenizer.from_pretrained(tiny_t5).get_vocab().items())[:4]
    T5Tokenizer(vocab=[(p, 0.) for p, _ in pieces], extra_ids=0).save_pretrained(broken)
    with pytest.raises(RuntimeError, match=r'has [0-9] tokens but its encoder has [0-9]+ embedding rows'):
        build(str(broken))


@pytest.mark.parametrize('where', ['folder', 'reference', 'hf-cache'])
def test_the_t5_lookup_requires_the_tokenizer_a_real_t5_needs(tiny_t5, tmp_path, monkeypatch, where):
    """A T5 copied without its tokenizer (config and weights only) is missing, wherever it lies:
    offline, transformers would hand back a silently broken tokenizer. With it, it is found."""
    import shutil

    import huggingface_hub.constants

    from od.conditioners.t5 import T5_TOKENIZER, locate_t5
    from od.core.environment import MissingWeightsError
    from od.inference.tiny import hub_snapshot
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', str(tmp_path / 'ref'))
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hub'))
    folder = {'folder': tmp_path / 'mine', 'reference': tmp_path / 'ref' / 't5-base',
              'hf-cache': hub_snapshot(tmp_path / 'hub', 't5-base')}[where]
    shutil.copytree(tiny_t5, folder, dirs_exist_ok=True)
    name = str(folder) if where == 'folder' else 't5-base'
    kept = {f: (folder / f).read_bytes() for f in T5_TOKENIZER if (folder / f).exists()}
    assert kept and locate_t5(name).resolve() == folder.resolve()
    for f in kept:
        (folder / f).unlink()
    with pytest.raises(MissingWeightsError, match='spiece.model or tokenizer.json'):
        locate_t5(name)
