"""Checkpoints that keep only what trained and name the frozen base for the rest.

Textual inversion trains a few hundred numbers of a 300 M+ parameter LM. Writing the whole LM
(twice: model and best_state) every epoch would cost gigabytes per XP and per sweep point, for
weights that are bit-identical to the `continue_from` checkpoint the run started from. So the
solver writes only the trained tensors plus `state[FROZEN_BASE] = {'source', 'digest'}`, and
every reader (resume, `continue_from` of another XP, `od.inference.load`, `od.export`) completes
the other tensors from `source` (`complete`, given the reader of bases: od/inference/loaders.py's). The digest is taken over the frozen tensors, so a base that
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
    """A solver state whose `model` and best-state LM tensors keep only `trained` ones."""
    # New dicts all the way down: the solver's own (e.g. its best-state copy) must stay whole.
    state = {**state, FROZEN_BASE: {'source': source, 'digest': frozen_digest}}
    replace_lm_states(state, lambda lm: {k: v for k, v in lm.items() if k in trained})
    return state


LM_HOLDERS = ('model', 'best_state', 'fsdp_best_state')


def lm_state(pkg: dict, name: str) -> tp.Optional[dict]:
    """The LM tensors under `name`: `model` holds them itself, the best states under 'model'."""
    holder = pkg.get(name)
    lm = holder.get('model') if isinstance(holder, dict) and name != 'model' else holder
    return lm if isinstance(lm, dict) and lm else None


def replace_lm_states(pkg: dict, new: tp.Callable[[dict], dict]) -> None:
    """pkg[...] <- new(LM tensors) for every holder present, as new dicts (nothing shared is mutated)."""
    for name in LM_HOLDERS:
        lm = lm_state(pkg, name)
        if lm is not None:
            pkg[name] = new(lm) if name == 'model' else {**pkg[name], 'model': new(lm)}


def complete(pkg: dict, read_base: tp.Callable[[str], tp.Dict[str, torch.Tensor]]) -> dict:
    """A checkpoint package with every `model` / best-state LM entry complete again: the base
    read once (`read_base(source)` -> its LM tensors), checked once against the digest, then
    overlaid with the trained tensors. Packages without the marker are returned unchanged."""
    meta = pkg.get(FROZEN_BASE) if isinstance(pkg, dict) else None
    if not meta:
        return pkg
    pkg = dict(pkg)
    trained = set().union(*(lm for name in LM_HOLDERS if (lm := lm_state(pkg, name))))
    base = read_base(meta['source'])
    found = digest(base, [k for k in base if k not in trained])
    if found != meta['digest']:
        raise ValueError(f"The frozen LM at {meta['source']} has changed since these rows were trained on it "
                         f"(digest {found}, expected {meta['digest']}); the rows would steer another model.")
    replace_lm_states(pkg, lambda lm: {**base, **lm})
    return pkg
