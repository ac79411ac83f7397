"""Learned concepts (textual inversion) on disk, and loading them into any T5 MusicGen.

A concepts file (`checkpoints/concepts/<dataset>/<xp sig>/epoch_<n>.pt` or `best.pt`, written by
the textual-inversion solver) holds plain tensors and strings, so it loads with
`torch.load(weights_only=True)`:

    {'concepts': {name: rows [tokens_num, D_t5]}, 't5': name, 't5_dim': D_t5, 'epoch', 'xp',
     'dataset', 'metrics': {stage/metric: value}}

`load_concepts(model, path)` adds each concept's tokens to the tokenizer and its rows to the
T5 conditioner of `model` (a MusicGen, or its LM), which then understands prompts such as
"a calm piano piece in the style of <8bit>".
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

from .textual_inversion import PLACEHOLDER  # noqa: F401  (`<8bit>` in a prompt)


def save_concepts(conditioner, path: tp.Union[str, Path], **meta: tp.Any) -> Path:
    """Write the conditioner's learned rows atomically."""
    from ..core.atomic import torch_save
    data = {'concepts': conditioner.concept_rows(), 't5': str(conditioner.name),
            't5_dim': int(conditioner.concept_embeds.shape[1]), **meta}
    return torch_save(data, path)


def read_concepts(path: tp.Union[str, Path]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Concepts file not found: {path} (the textual-inversion solver writes them "
                                "to checkpoints/concepts/<dataset>/<xp sig>/epoch_<n>.pt and best.pt).")
    from ..core.safe_load import torch_load
    data = torch_load(path, 'concepts file')
    if not isinstance(data, dict) or 'concepts' not in data:
        raise ValueError(f"{path} is not a concepts file (no 'concepts' entry).")
    return data


def text_conditioner(lm) -> tp.Tuple[str, tp.Any]:
    """(attribute, conditioner) of the LM's T5 text conditioner."""
    from .t5 import T5Conditioner
    found = [(a, c) for a, c in lm.condition_provider.conditioners.items() if isinstance(c, T5Conditioner)]
    if len(found) != 1:
        raise ValueError(f"concepts need a model with one od T5 text conditioner; this one has "
                         f"{[a for a, _ in found] or 'none'} (conditioners: "
                         f"{list(lm.condition_provider.conditioners)}).")
    return found[0]


def load_concepts(model, path: tp.Union[str, Path]) -> tp.List[str]:
    """Add the concepts stored at `path` to `model` (MusicGen or LMModel); returns their names."""
    from .textual_inversion import TextualInversionT5
    lm = getattr(model, 'lm', model)
    data = read_concepts(path)
    attribute, cond = text_conditioner(lm)
    if not isinstance(cond, TextualInversionT5):
        cond = TextualInversionT5.from_t5(cond)
        lm.condition_provider.conditioners[attribute] = cond
    dim = cond.t5.get_input_embeddings().weight.shape[1]
    if data.get('t5_dim', dim) != dim:
        raise ValueError(f"{path} was learned with T5 '{data.get('t5')}' ({data['t5_dim']}-dim rows); this "
                         f"model's T5 '{cond.name}' is {dim}-dim.")
    for concept, rows in data['concepts'].items():
        cond.add_concept(concept, rows=rows)
    return list(data['concepts'])
