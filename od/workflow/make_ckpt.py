"""Starting checkpoint for a new conditioner: a pretrained MusicGen LM + a fresh conditioner.

    python -m od.make_ckpt --from facebook/musicgen-small --out checkpoints/small_clip.th \\
        solver=musicgen/musicgen_base_32khz model/lm/model_scale=small conditioner=clipemb2music
    dora run solver=musicgen/musicgen_base_32khz model/lm/model_scale=small \\
        conditioner=clipemb2music continue_from=checkpoints/small_clip.th dset=audio/<name>

The positional arguments are the `dora run` overrides of the run that will continue from the
file: od builds that LM (conditioners through the registry), copies every tensor of the source
whose name and shape match, keeps the builder's fresh initialisation for the rest, and prints a
table of copied / new / dropped tensors (shapes in PyTorch's (out, in) layout). A source whose
backbone does not fit (a tensor outside the allowed-new patterns missing or shaped differently)
is refused with the list, and nothing is written. The output is written atomically.

`--match-source` takes the LM's shape (width, depth, heads, codebooks, codec) from the source's
own stored config wherever it differs from what the overrides compose, and prints those
overrides: the training run needs them too (`od.pipeline` adds them itself).

Sources: a file (AudioCraft export `state_dict.bin`, or a Dora `checkpoint.th`), a folder
holding `state_dict.bin`, `//sig/<sig>`, or a hub id such as facebook/musicgen-small (from the
reference dir or the Hugging Face cache; never downloaded).
"""
from __future__ import annotations

import re
import typing as tp
from pathlib import Path

import torch

DEFAULT_NEW = ('condition_provider', 'cross_attention')


from ..inference.loaders import load_lm_state as load_source_state  # noqa: E402  (the source's LM tensors)

# Config keys that decide the LM's tensors (names and shapes) and what its tokens mean.
ARCHITECTURE_KEYS = (
    'transformer_lm.dim', 'transformer_lm.num_heads', 'transformer_lm.num_layers', 'transformer_lm.hidden_scale',
    'transformer_lm.n_q', 'transformer_lm.card', 'transformer_lm.bias_proj', 'transformer_lm.bias_ff',
    'transformer_lm.bias_attn', 'transformer_lm.norm', 'transformer_lm.norm_first', 'transformer_lm.layer_scale',
    'transformer_lm.positional_embedding', 'codebooks_pattern.modeling', 'codebooks_pattern.delay.delays',
    'compression_model_checkpoint', 'sample_rate', 'channels')


def architecture_overrides(source: str, overrides: tp.Sequence[str]) -> tp.List[str]:
    """Overrides that give the LM `overrides` compose the architecture of `source` (its stored
    xp.cfg), for the keys in ARCHITECTURE_KEYS that differ; empty when they already agree (as
    for upstream MusicGen under its own model_scale)."""
    from omegaconf import OmegaConf

    from ..inference.loaders import read_config
    from . import runs
    src = OmegaConf.create(read_config(source))
    target = runs.compose(list(overrides))
    out = []
    for key in ARCHITECTURE_KEYS:
        theirs = OmegaConf.select(src, key, default=None, throw_on_missing=False)
        if theirs is None or OmegaConf.select(target, key, default=None, throw_on_missing=False) is None:
            continue
        mine = OmegaConf.select(target, key)
        theirs = OmegaConf.to_container(theirs) if OmegaConf.is_config(theirs) else theirs
        mine = OmegaConf.to_container(mine) if OmegaConf.is_config(mine) else mine
        if theirs != mine:
            out.append(f"{key}={_override_value(theirs)}")
    return out


def _override_value(value: tp.Any) -> str:
    """A value in Hydra's override syntax."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if value is None:
        return 'null'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(_override_value(v) for v in value) + ']'
    return str(value)


def merge(target: tp.Dict[str, torch.Tensor], source: tp.Dict[str, torch.Tensor],
          allow_new: tp.Sequence[str] = DEFAULT_NEW) -> tp.Tuple[dict, tp.List[tuple]]:
    """Target state with matching source tensors copied; rows (status, name, target shape, source shape).

    Raises ValueError (listing the tensors) when a tensor outside `allow_new` has no source of
    the same shape: the source is another architecture and the result would be mostly random.
    """
    patterns = [re.compile(p) for p in allow_new]
    merged, rows, misfits = {}, [], []
    for name, tensor in target.items():
        src = source.get(name)
        if src is not None and src.shape == tensor.shape:
            merged[name] = src.to(tensor.dtype).clone()
            rows.append(('copied', name, tuple(tensor.shape), tuple(src.shape)))
            continue
        merged[name] = tensor
        why = 'new' if src is None else 'new (shape differs)'
        rows.append((why, name, tuple(tensor.shape), None if src is None else tuple(src.shape)))
        if not any(p.search(name) for p in patterns):
            misfits.append(f"{name}: target {tuple(tensor.shape)}, source "
                           f"{'missing' if src is None else tuple(src.shape)}")
    rows += [('dropped', name, None, tuple(t.shape)) for name, t in source.items() if name not in target]
    if misfits:
        shown = '\n  '.join(misfits[:12]) + (f"\n  ... and {len(misfits) - 12} more" if len(misfits) > 12 else '')
        raise ValueError("The source does not fit this model (check model/lm/model_scale and the LM "
                         f"options): {len(misfits)} backbone tensors have no match:\n  {shown}")
    return merged, rows


def format_table(rows: tp.Sequence[tuple], init_note: str) -> str:
    lines = [f"{'status':<20} {'tensor':<72} {'target (out, in)':<18} source"]
    for status, name, tgt, src in sorted(rows, key=lambda r: (r[0] != 'copied', r[0], r[1])):
        lines.append(f"{status:<20} {name:<72} {str(tgt or '-'):<18} {src or '-'}")
    counts = {s: sum(r[0] == s for r in rows) for s in ('copied', 'new', 'new (shape differs)', 'dropped')}
    lines.append(' | '.join(f"{k}: {v}" for k, v in counts.items()) + f"  (new tensors: {init_note})")
    return '\n'.join(lines)


def make_checkpoint(source: str, out: tp.Union[str, Path], overrides: tp.Sequence[str],
                    allow_new: tp.Sequence[str] = DEFAULT_NEW, seed: int = 0) -> tp.Tuple[Path, str]:
    """Build the target LM from `overrides`, merge `source` into it, save for `continue_from`."""
    from omegaconf import OmegaConf

    from ..conditioners import registry
    from ..core import environment
    from ..inference.loaders import new_lm
    from . import runs
    cfg = runs.compose(list(overrides))  # no dataset needed: only the model is built
    cfg.device = 'cpu'
    environment.absolute_user_paths(cfg)
    registry.import_modules(cfg.get('registry_modules') or [])
    lm = new_lm(cfg, seed)
    merged, rows = merge(lm.state_dict(), load_source_state(source), allow_new)
    lm.load_state_dict(merged)  # strict: the file must load into exactly this model
    init = (f"built by get_lm_model with seed {seed}: transformer_lm.weight_init="
            f"{cfg.transformer_lm.weight_init}, conditioner projections torch's nn.Linear default")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {'best_state': {'model': lm.state_dict()},
             'xp.cfg': OmegaConf.to_container(cfg, resolve=False),
             'od.make_ckpt': {'source': str(source), 'overrides': list(overrides),
                              'copied': sum(r[0] == 'copied' for r in rows)}}
    from ..core.atomic import clean_stale, torch_save
    clean_stale(out.parent)  # temporaries of killed runs
    torch_save(state, out)
    return out, format_table(rows, init)
