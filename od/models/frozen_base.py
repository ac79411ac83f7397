"""Checkpoints that keep only what trained and name the frozen base for the rest.

Textual inversion trains a few hundred numbers of a 300 M+ parameter LM. Writing the whole LM
(twice: model and best_state) every epoch would cost gigabytes per XP and per sweep point, for
weights that are bit-identical to the `continue_from` checkpoint the run started from. So the
solver writes only the trained tensors plus `state[FROZEN_BASE] = {'source', 'digest'}`, and
every reader (resume, `continue_from` of another XP, `od.models.load`, `od.export`) fills the
other tensors back from `source`. The digest is taken over the frozen tensors, so a base that
has since changed is refused instead of silently paired with rows it never saw.
"""
from __future__ import annotations

import hashlib
import typing as tp
from pathlib import Path

import torch

FROZEN_BASE = 'od_frozen_base'
PRETRAINED = '//pretrained/'


def digest(state: tp.Mapping[str, torch.Tensor], keys: tp.Iterable[str]) -> str:
    """Cheap fingerprint of `keys` of a state dict: per tensor its name, shape, sum and abs-sum."""
    h = hashlib.sha1()
    for key in sorted(keys):
        t = state[key].detach().double()
        h.update(f'{key}:{tuple(t.shape)}:{t.sum().item():.10e}:{t.abs().sum().item():.10e};'.encode())
    return h.hexdigest()[:16]


def base_source(continue_from: str) -> str:
    """Where the frozen weights will be read again: `//pretrained/<id>` as given, anything else as
    the absolute checkpoint file AudioCraft resolves it to (so later readers need no cwd or Dora)."""
    if continue_from.startswith(PRETRAINED):
        return continue_from
    from audiocraft.utils.checkpoint import resolve_checkpoint_path
    path = resolve_checkpoint_path(continue_from, use_fsdp=False)
    if path is None:
        raise FileNotFoundError(f"continue_from={continue_from} does not resolve to a checkpoint.")
    return str(Path(path).resolve())


def strip(state: dict, trained: tp.Collection[str], source: str, frozen_digest: str) -> dict:
    """A solver state whose `model` and `best_state.model` keep only `trained` tensors."""
    def keep(model: dict) -> dict:
        return {k: v for k, v in model.items() if k in trained}
    # New dicts all the way down: the solver's own (e.g. its best-state copy) must stay whole.
    state = {**state, FROZEN_BASE: {'source': source, 'digest': frozen_digest}}
    if isinstance(state.get('model'), dict):
        state['model'] = keep(state['model'])
    best = state.get('best_state')
    if isinstance(best, dict) and isinstance(best.get('model'), dict):
        state['best_state'] = {**best, 'model': keep(best['model'])}
    return state


def read_base(source: str) -> tp.Dict[str, torch.Tensor]:
    """The LM weights of a base (`//pretrained/<id>`, an export, a Dora or make_ckpt checkpoint)
    through od's one loader; a base that is itself stored as trained-only is completed first."""
    from .loaders import locate_model, read_model_files
    spec = source[len(PRETRAINED):] if source.startswith(PRETRAINED) else source
    try:
        path = locate_model(spec)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"This checkpoint keeps only its trained rows; the frozen LM comes from {source}, which is "
            f"gone ({exc}). Put that checkpoint back, or retrain from another base.") from exc
    state, _, _ = read_model_files(path)
    return state


def complete(state: tp.Dict[str, torch.Tensor], base: tp.Mapping[str, torch.Tensor], expected: str,
             source: str) -> tp.Dict[str, torch.Tensor]:
    """`base` overlaid with `state`, after checking the base is the one the rows were trained on."""
    frozen = [k for k in base if k not in state]
    found = digest(base, frozen)
    if found != expected:
        raise ValueError(f"The frozen LM at {source} has changed since these rows were trained on it "
                         f"(digest {found}, expected {expected}); the rows would steer another model.")
    return {**base, **state}


def fill(pkg: dict) -> dict:
    """A checkpoint package with every `model` / `best_state.model` entry complete again.
    Packages without the marker are returned unchanged."""
    meta = pkg.get(FROZEN_BASE) if isinstance(pkg, dict) else None
    if not meta:
        return pkg
    base = read_base(meta['source'])
    pkg = dict(pkg)
    for name in ('model', 'best_state', 'fsdp_best_state'):
        holder = pkg.get(name)
        if name != 'model' and isinstance(holder, dict) and isinstance(holder.get('model'), dict):
            pkg[name] = {**holder, 'model': complete(holder['model'], base, meta['digest'], meta['source'])}
        elif name == 'model' and isinstance(holder, dict) and holder:
            pkg[name] = complete(holder, base, meta['digest'], meta['source'])
    return pkg
