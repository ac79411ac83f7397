"""`t5`: AudioCraft's T5 text conditioner, loading weights only from local places.

AudioCraft's T5Conditioner accepts ten hub names and calls `from_pretrained(name)`, which with
no network either retries for minutes or (HF_HUB_OFFLINE=1, transformers 5) hands back a
silently broken tokenizer. This subclass resolves the name first — a local folder, then
`<reference_dir>/<name>`, then the Hugging Face cache — loads from that folder, refuses a
tokenizer that does not match the encoder, and takes the width from the model's own config,
so any T5 works (a tiny random one in tests). Tokenisation and forward are AudioCraft's.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import torch
from audiocraft.modules import conditioners as ac
from audiocraft.utils.autocast import TorchAutocast

from ..core.environment import MissingWeightsError, hf_snapshot, missing_files, resolve_reference
from .registry import register_conditioner

T5_WEIGHTS = ('model.safetensors', 'pytorch_model.bin')
T5_TOKENIZER = ('spiece.model', 'tokenizer.json')


T5_FILES = ('config.json', T5_WEIGHTS, T5_TOKENIZER)   # a real T5: its config, weights and tokenizer


def locate_t5(name: str) -> Path:
    """Folder holding the T5 `name` (a path, `//reference/...`, or a hub id such as t5-base)
    with every file a real T5 needs, the tokenizer's included: offline, a folder without them
    gives a silently broken tokenizer, so it counts as missing."""
    local = resolve_reference(name)
    if local.is_dir():
        missing = missing_files(local, T5_FILES)
        if missing:
            raise MissingWeightsError(f"The T5 folder {local} lacks {', '.join(missing)} (od never downloads): "
                                      "copy the whole model folder (config, weights and tokenizer) there.")
        return local
    return hf_snapshot(name, required=T5_FILES)


def check_tokenizer_matches(tokenizer_size: int, model_vocab: int, name: str) -> None:
    """Refuse a tokenizer that cannot be the encoder's own (e.g. a 104-token T5 built offline)."""
    # Equal sizes, or the table padded up to the next multiple of 128 (t5-base: 32100 tokens,
    # 32128 rows).
    padded = model_vocab % 128 == 0 and model_vocab - 128 < tokenizer_size <= model_vocab
    if tokenizer_size != model_vocab and not padded:
        raise RuntimeError(
            f"Tokenizer for '{name}' has {tokenizer_size} tokens but its encoder has "
            f"{model_vocab} embedding rows: the tokenizer files are missing or broken. "
            f"Re-copy the model folder (it needs {' or '.join(T5_TOKENIZER)}) and retry.")


@register_conditioner('t5')
class T5Conditioner(ac.T5Conditioner):
    """Frozen (or fine-tuned) T5 encoder -> projection to the LM width, from local weights."""

    def __init__(self, name: str, output_dim: int, finetune: bool, device: str,
                 autocast_dtype: tp.Optional[str] = 'float32', word_dropout: float = 0.,
                 normalize_text: bool = False):
        from transformers import AutoTokenizer, T5EncoderModel

        folder = locate_t5(name)
        if not any((folder / f).exists() for f in T5_TOKENIZER):
            raise FileNotFoundError(f"No tokenizer in {folder}: it needs {' or '.join(T5_TOKENIZER)}.")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        t5 = T5EncoderModel.from_pretrained(folder).train(mode=finetune)
        check_tokenizer_matches(len(tokenizer), t5.config.vocab_size, name)
        # Skip AudioCraft's __init__ (hub names only); set up the same attributes it would
        # (declared in od/conditioners/hooks.py, which checks the names tokenize/forward read).
        ac.TextConditioner.__init__(self, t5.config.d_model, output_dim)
        self.device = device
        self.name = name
        self.finetune = finetune
        self.word_dropout = word_dropout
        use_autocast = autocast_dtype is not None and str(device) != 'cpu'
        self.autocast = TorchAutocast(enabled=use_autocast, device_type=str(device),
                                      dtype=getattr(torch, autocast_dtype or 'float32'))
        self.t5_tokenizer = tokenizer
        if finetune:
            self.t5 = t5
        else:  # kept out of the module tree: not trained, not in checkpoints
            self.__dict__['t5'] = t5.to(device)
        self.normalize_text = normalize_text
        if normalize_text:
            self.text_normalizer = ac.WhiteSpaceTokenizer(1, lemma=True, stopwords=True)
