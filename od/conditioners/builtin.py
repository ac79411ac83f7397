"""AudioCraft 1.3's conditioners, registered under their upstream names.

`t5` gains an offline check first: AudioCraft's T5Conditioner calls `from_pretrained(name)`,
which with an empty cache either retries the hub for minutes or (HF_HUB_OFFLINE=1, transformers
5) returns a silently broken tokenizer. Here a missing model is a `MissingWeightsError` naming
the files, and a tokenizer whose vocabulary does not match the encoder is refused.
"""
from __future__ import annotations

import typing as tp

from audiocraft.modules import conditioners as ac

from ..environment import hf_snapshot
from ..registry import register_conditioner

register_conditioner('lut')(ac.LUTConditioner)
register_conditioner('chroma_stem')(ac.ChromaStemConditioner)
register_conditioner('clap')(ac.CLAPEmbeddingConditioner)

T5_WEIGHTS = ('model.safetensors', 'pytorch_model.bin')


def check_tokenizer_matches(tokenizer_size: int, model_vocab: int, name: str) -> None:
    """Refuse a tokenizer that cannot be the encoder's own (e.g. a 104-token T5 built offline)."""
    # T5 checkpoints pad the embedding table to a multiple of 128 (32100 tokens, 32128 rows).
    if not (model_vocab - 128 <= tokenizer_size <= model_vocab):
        raise RuntimeError(
            f"Tokenizer for '{name}' has {tokenizer_size} tokens but its encoder has "
            f"{model_vocab} embedding rows: the tokenizer files are missing or broken. "
            "Re-copy the model folder (spiece.model / tokenizer.json) and retry.")


@register_conditioner('t5')
def t5_conditioner(output_dim: int, name: str, finetune: bool, device: str, **kwargs: tp.Any):
    """AudioCraft's T5Conditioner, built only once the weights are known to be local."""
    hf_snapshot(name, required=('config.json',), any_of=T5_WEIGHTS)
    conditioner = ac.T5Conditioner(name=name, output_dim=output_dim, finetune=finetune,
                                   device=device, **kwargs)
    t5 = conditioner.t5 if finetune else conditioner.__dict__['t5']
    check_tokenizer_matches(len(conditioner.t5_tokenizer), t5.config.vocab_size, name)
    return conditioner
