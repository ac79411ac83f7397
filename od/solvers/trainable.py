"""Train only what you choose: parameter-name patterns -> requires_grad and optimizer groups.

`trainable: all` (default) trains everything. A list of regular expressions, searched in each
parameter name of the LM (`condition_provider`, `cross_attention`, `transformer.layers.2[34]`),
trains only the matches: the rest get `requires_grad=False` and are left out of the optimizer,
which saves the optimizer state (2 x params for Adam) and the gradients of frozen weights.
The word `lora` in the list adds low-rank adapters (od/solvers/lora.py) and trains them.
"""
from __future__ import annotations

import re
import typing as tp

from torch import nn


def trainable_patterns(spec: tp.Any) -> tp.Optional[tp.List[str]]:
    """None when everything trains, else the list of patterns."""
    if spec is None or spec == 'all' or (not isinstance(spec, str) and list(spec) == ['all']):
        return None
    patterns = [spec] if isinstance(spec, str) else [str(p) for p in spec]
    if not patterns:
        raise ValueError("trainable is empty: list parameter-name patterns, or use trainable=all")
    return patterns


def freeze_except(model: nn.Module, patterns: tp.Sequence[str],
                  rename: tp.Optional[tp.Callable[[str], str]] = None) -> tp.Tuple[int, int]:
    """Set requires_grad from the patterns; returns (trainable, total) parameter counts.

    `rename` maps parameter names before matching (a LoRA-wrapped LM: peft's names -> AudioCraft's).
    Raises ValueError naming any pattern that matches nothing (a typo would otherwise silently
    freeze the whole model).
    """
    compiled = [(p, re.compile(p)) for p in patterns]
    hits = {p: 0 for p in patterns}
    trainable = total = 0
    for name, param in model.named_parameters():
        name = rename(name) if rename else name
        matched = [p for p, rx in compiled if rx.search(name)]
        for p in matched:
            hits[p] += 1
        param.requires_grad_(bool(matched))
        total += param.numel()
        trainable += param.numel() if matched else 0
    unused = [p for p, n in hits.items() if n == 0]
    if unused:
        names = sorted({n.split('.')[0] for n, _ in model.named_parameters()})
        raise ValueError(f"trainable pattern(s) {unused} match no parameter of the LM "
                         f"(top-level modules: {names}).")
    return trainable, total


def only_trainable(groups: tp.List[dict]) -> tp.List[dict]:
    """Optimizer parameter groups restricted to parameters that require grad."""
    out = []
    for group in groups:
        params = [p for p in group['params'] if p.requires_grad]
        if params:
            out.append({**group, 'params': params})
    return out
