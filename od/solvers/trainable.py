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


def spec_of(cfg: tp.Any) -> tp.Any:
    """The `trainable` value of a solver config (`all` when unset)."""
    return cfg.get('trainable', 'all')


def lm_patterns(spec: tp.Any) -> tp.Optional[tp.List[str]]:
    """The patterns searched in the LM's (LoRA-unrenamed) parameter names: `spec`'s, the word
    `lora` standing for the adapters' tensors; None when everything trains."""
    from . import lora
    patterns = trainable_patterns(spec)
    return None if patterns is None else [lora.ADAPTER_PATTERN if p == lora.LORA else p for p in patterns]


def apply_trainable(lm: nn.Module, spec: tp.Any, strict: bool = True) -> tp.Optional[tp.Tuple[int, int]]:
    """requires_grad of `lm`'s parameters as `trainable: spec` says -- what the solver trains and
    what the memory plan counts. LoRA adapters, when `spec` names them, are already on `lm`.

    Returns (trainable, total) parameter counts, or None when everything trains (nothing is
    changed). `strict`: a pattern matching no parameter is an error (see `freeze_except`); the
    memory plan, which builds the LM without its conditioners, ignores those instead.
    """
    from .trained_only import plain_names
    patterns = lm_patterns(spec)
    if patterns is None:
        return None
    return freeze_except(lm, patterns, rename=plain_names(lm), strict=strict)


def freeze_except(model: nn.Module, patterns: tp.Sequence[str],
                  rename: tp.Optional[tp.Callable[[str], str]] = None, strict: bool = True) -> tp.Tuple[int, int]:
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
    if unused and strict:
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
