"""Trained-only XP checkpoints for every run that freezes part of the LM (`trainable` patterns,
LoRA, textual inversion): what od's MusicGen solver writes and reads around AudioCraft's.

When the run starts from a `continue_from` base and some LM parameters are frozen, `checkpoint.th`
keeps the trained tensors only (in `model`, the best state and the EMA) and names the base
(od/solvers/frozen_base.py): a LoRA or cross-attention run writes megabytes per epoch instead of
a copy of the LM. Reading it back fills the frozen tensors from the base; a LoRA run continued
from a plain base gets fresh adapters (peft's initialisation: the model starts as the base).
"""
from __future__ import annotations

import typing as tp

import torch
from torch import nn

from . import frozen_base
from . import lora as lora_lib


def plain_names(model: nn.Module) -> tp.Callable[[str], str]:
    """Parameter name -> the name its tensor has in the LM's state dict (LoRA renames)."""
    adapters = getattr(model, 'od_lora', None)
    return (lambda name: adapters.to_plain.get(name, name)) if adapters is not None else (lambda name: name)


def trained_names(model: nn.Module) -> tp.Set[str]:
    """State-dict names of the LM parameters that train."""
    rename = plain_names(model)
    return {rename(n) for n, p in model.named_parameters() if p.requires_grad}


def has_frozen(model: nn.Module) -> bool:
    return any(not p.requires_grad for p in model.parameters())


def strip(state: dict, model: nn.Module, meta: tp.Tuple[str, str]) -> dict:
    """The solver state with only the trained LM tensors (model, best states, EMA) + the base."""
    trained = trained_names(model)
    state = frozen_base.strip(state, trained, *meta)
    ema = state.get('ema')
    if isinstance(ema, dict) and isinstance(ema.get('state'), dict) and 'model' in ema['state']:
        # The EMA keeps peft's parameter names (it reads named_parameters()).
        trained_raw = {n for n, p in model.named_parameters() if p.requires_grad}
        ema_state = {**ema['state'], 'model': {k: v for k, v in ema['state']['model'].items() if k in trained_raw}}
        state['ema'] = {**ema, 'state': ema_state}
    return state


def base_meta_for_continue(continue_from: str, best: dict, model: nn.Module) -> tp.Tuple[str, str]:
    """(source, digest) naming the `continue_from` checkpoint as this run's frozen base."""
    trained = trained_names(model)
    return frozen_base.base_source(continue_from), frozen_base.digest(best, [k for k in best if k not in trained])


def add_missing_adapters(lm_state: dict, model: nn.Module) -> None:
    """A base without this run's adapters (a plain LM) gets the model's fresh adapter tensors."""
    names = lora_lib.adapter_names(model)
    missing = [n for n in names if n not in lm_state]
    if not missing:
        return
    if len(missing) != len(names):
        raise ValueError(f"the checkpoint holds some of this model's LoRA adapters but not {missing[:3]}...: "
                         "it was trained with other lora.targets.")
    current = model.state_dict()
    for name in missing:
        lm_state[name] = current[name].detach().clone()


def refuse_foreign_adapters(lm_state: dict, model: nn.Module) -> None:
    if getattr(model, 'od_lora', None) is None and any(lora_lib.is_adapter(k) for k in lm_state):
        raise ValueError("this checkpoint holds LoRA adapters but the run has none (trainable has no `lora`): "
                         "merge them first with `python -m od.export --merge-lora ...`, or add lora to trainable.")


def resync_frozen_ema(ema, model: nn.Module) -> None:
    """EMA entries of frozen tensors <- the model's (a trained-only checkpoint does not hold them)."""
    if ema is None:
        return
    state = ema.state.get('model')
    if not state:
        return
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    frozen.update(model.named_buffers())
    with torch.no_grad():
        for name, value in state.items():
            if name in frozen:
                value.copy_(frozen[name].detach().to(value.device))
