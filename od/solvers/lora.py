"""Low-rank adapters (LoRA) on a MusicGen LM, through the `peft` package.

    dora run solver=musicgen/finetune_lora ...             # trainable: [lora]
    dora run ... 'trainable=[lora,condition_provider]'      # adapters + a conditioner trained fully
    lora.rank=16 lora.alpha=32 'lora.targets=[...]'

`lora.targets` are regular expressions searched in the LM's module names. What each matched
module gets depends on its type:

- `nn.Linear` (e.g. `transformer.layers.3.self_attn.out_proj`, `linear1`, a conditioner's
  `output_proj`): peft's `lora.Linear`;
- AudioCraft's `StreamingMultiheadAttention` (`self_attn`, `cross_attention`): its fused q/k/v
  projection. AudioCraft keeps it as one parameter `in_proj_weight` [3 * dim, dim] used through
  `F.linear` (sliced into q and k/v for cross-attention), not as `nn.Linear` layers, so it is
  adapted with peft's parameter adapter (`LoraConfig.target_parameters`, `lora.ParamWrapper`):
  one rank-r update of the whole fused matrix, i.e. of q, k and v together.

The default targets adapt, in every layer, the self- and cross-attention q/k/v (`in_proj_weight`)
and output projections (`out_proj`). Only AudioCraft's own attention path (`custom`, used by
every MusicGen config through `memory_efficient: true`) has that fused parameter; an LM built
with torch's `nn.MultiheadAttention` (`transformer_lm.custom=false, memory_efficient=false`) is
refused rather than adapted halfway. peft's parameter adapters do not support dropout, so
`lora.dropout > 0` works only with `nn.Linear` targets.

Names: peft renames wrapped modules (`self_attn.base_layer.out_proj.base_layer.weight`). The LM's
`state_dict()` / `load_state_dict()` are given AudioCraft's plain names back (hooks on the LM:
`self_attn.out_proj.weight`, and `self_attn.out_proj.lora_A.weight` for the adapters), so
checkpoints, the frozen-base fill, EMA, exports and AudioCraft's loaders all see one naming:
the base tensors under their usual names plus the adapter tensors. `merge` folds the adapters
into the base weights (peft's `merge_and_unload`) and leaves a plain AudioCraft LM.
"""
from __future__ import annotations

import dataclasses
import re
import typing as tp

from torch import nn

LORA = 'lora'                    # the `trainable` keyword for the adapters
ADAPTER = 'default'              # peft's adapter name (one adapter per LM)
ADAPTER_PATTERN = r'\.lora_[AB]\.'  # canonical names of adapter tensors
DEFAULT_TARGETS = (r'(self_attn|cross_attention)$', r'(self_attn|cross_attention)\.out_proj$')
FUSED_PARAMETER = 'in_proj_weight'


@dataclasses.dataclass
class LoraSettings:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tp.Tuple[str, ...] = DEFAULT_TARGETS


def uses_lora(trainable: tp.Any) -> bool:
    """Whether a `trainable` value (`lora`, `[lora, ...]`, a pattern list, `all`) asks for adapters."""
    if trainable is None or isinstance(trainable, str):
        return trainable == LORA
    return LORA in [str(p) for p in trainable]


def settings_from_cfg(cfg: tp.Any) -> tp.Optional[LoraSettings]:
    """The LoRA settings of an XP config (None when `trainable` does not name `lora`)."""
    if not uses_lora(cfg.get('trainable', 'all')):
        return None
    lora = dict(cfg.get('lora') or {})
    targets = lora.get('targets') or DEFAULT_TARGETS
    out = LoraSettings(rank=int(lora.get('rank', 8)), alpha=float(lora.get('alpha', 16.0)),
                       dropout=float(lora.get('dropout', 0.0)),
                       targets=(targets,) if isinstance(targets, str) else tuple(str(t) for t in targets))
    if out.rank < 1:
        raise ValueError(f"lora.rank={out.rank}: the adapters' rank must be >= 1.")
    return out


def resolve_targets(lm: nn.Module, targets: tp.Sequence[str]) -> tp.Tuple[tp.List[str], tp.List[str]]:
    """(nn.Linear module names, fused-attention parameter names) the target patterns select.

    Raises ValueError for a pattern that matches nothing and for a matched module peft cannot
    adapt here (its type is named).
    """
    from audiocraft.modules.transformer import StreamingMultiheadAttention
    compiled = [(t, re.compile(t)) for t in targets]
    hits = {t: 0 for t in targets}
    linears, fused = [], []
    for name, module in lm.named_modules():
        matched = [t for t, rx in compiled if name and rx.search(name)]
        if not matched:
            continue
        for t in matched:
            hits[t] += 1
        if isinstance(module, nn.Linear):
            linears.append(name)
        elif isinstance(module, StreamingMultiheadAttention):
            if not getattr(module, 'custom', False):
                raise ValueError(
                    f"LoRA target {name} uses torch's nn.MultiheadAttention (transformer_lm.custom=false and "
                    "memory_efficient=false), whose projections od does not adapt. Every MusicGen config uses "
                    "AudioCraft's own attention: pass transformer_lm.custom=true (or memory_efficient=true).")
            fused.append(f'{name}.{FUSED_PARAMETER}')
        else:
            raise ValueError(f"LoRA target pattern(s) {matched} match {name} ({type(module).__name__}); "
                             "only nn.Linear layers and attention modules (their fused q/k/v) can be adapted.")
    unused = [t for t, n in hits.items() if n == 0]
    if unused:
        raise ValueError(f"lora.targets {unused} match no module of the LM (e.g. 'self_attn$', "
                         "'cross_attention\\.out_proj$', 'linear[12]$').")
    return linears, fused


def plain_name(name: str) -> str:
    """peft's name of a tensor -> AudioCraft's (adapters: `<module>.lora_A.weight`)."""
    parts = name.split('.')
    out = []
    for i, part in enumerate(parts):
        if part == 'base_layer' or (part == ADAPTER and i > 0 and parts[i - 1].startswith('lora_')):
            continue
        out.append(part)
    return '.'.join(out)


@dataclasses.dataclass
class Adapters:
    """What `apply` attached to an LM (as `lm.od_lora`)."""
    settings: LoraSettings
    tuner: tp.Any                       # peft's LoraModel over the LM
    to_plain: tp.Dict[str, str]         # peft tensor name -> AudioCraft name
    to_peft: tp.Dict[str, str]
    linears: tp.List[str]
    fused: tp.List[str]
    hooks: tp.List[tp.Any]

    def describe(self) -> str:
        kinds = []
        if self.fused:
            kinds.append(f"{len(self.fused)} fused q/k/v projections")
        if self.linears:
            kinds.append(f"{len(self.linears)} linear layers")
        return (f"LoRA rank {self.settings.rank} (alpha {self.settings.alpha:g}) on " + ' and '.join(kinds))


def apply(lm: nn.Module, settings: LoraSettings) -> Adapters:
    """Wrap the targets of `lm` with peft adapters, in place; `lm.od_lora` describes them."""
    from peft import LoraConfig
    from peft.tuners.lora import LoraModel
    if getattr(lm, 'od_lora', None) is not None:
        raise ValueError("this LM already has LoRA adapters.")
    linears, fused = resolve_targets(lm, settings.targets)
    if fused and settings.dropout:
        raise ValueError(f"lora.dropout={settings.dropout}: peft's adapters of fused attention projections "
                         "(in_proj_weight) do not support dropout. Use lora.dropout=0, or targets that are "
                         "only nn.Linear layers (e.g. 'lora.targets=[out_proj$,linear[12]$]').")
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=linears, target_parameters=fused or None)
    tuner = LoraModel(lm, config, ADAPTER)  # injects into lm itself; tuner.model is lm
    to_plain = {name: plain_name(name) for name in lm.state_dict(keep_vars=True)}
    to_peft = {plain: name for name, plain in to_plain.items()}
    if len(to_peft) != len(to_plain):
        raise ValueError("two LoRA-wrapped tensors would share one name (several parameters of one module "
                         "targeted?); narrow lora.targets.")
    hooks = [lm.register_state_dict_post_hook(_plain_state_hook),
             lm.register_load_state_dict_pre_hook(_peft_load_hook)]
    adapters = Adapters(settings, tuner, to_plain, to_peft, linears, fused, hooks)
    lm.od_lora = adapters
    return adapters


def _rename(state_dict, prefix: str, renames: tp.Mapping[str, str]) -> None:
    """Rename the keys under `prefix` that `renames` maps (relative names), in place."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = renames.get(key[len(prefix):])
        if new is not None and prefix + new != key:
            state_dict[prefix + new] = state_dict.pop(key)


def _plain_state_hook(module, state_dict, prefix, local_metadata) -> None:
    """peft's names -> AudioCraft's in what state_dict() returns."""
    _rename(state_dict, prefix, module.od_lora.to_plain)


def _peft_load_hook(module, state_dict, prefix, *args) -> None:
    """AudioCraft names -> peft's before loading; peft names (EMA swaps) pass unchanged."""
    _rename(state_dict, prefix, module.od_lora.to_peft)


def adapter_names(lm: nn.Module) -> tp.List[str]:
    """AudioCraft-style names of the adapter tensors of `lm` (empty without adapters)."""
    adapters = getattr(lm, 'od_lora', None)
    if adapters is None:
        return []
    rx = re.compile(ADAPTER_PATTERN)
    return [plain for plain in adapters.to_plain.values() if rx.search(plain)]


def is_adapter(name: str) -> bool:
    return re.search(ADAPTER_PATTERN, name) is not None


def merge(lm: nn.Module) -> nn.Module:
    """Fold the adapters into the base weights (peft's merge_and_unload, NaN-checked): `lm` becomes
    a plain AudioCraft LM whose state dict has exactly the base names."""
    adapters = getattr(lm, 'od_lora', None)
    if adapters is None:
        raise ValueError("this model has no LoRA adapters to merge.")
    from peft.tuners.tuners_utils import BaseTunerLayer
    # peft unloads the outermost wrappers of a pass: an attention's out_proj adapter sits inside
    # the wrapper of its fused in_proj, so it is merged by the next pass.
    for _ in range(4):
        if not any(isinstance(m, BaseTunerLayer) for m in lm.modules()):
            break
        assert adapters.tuner.merge_and_unload(safe_merge=True) is lm
    else:
        raise RuntimeError("peft left LoRA layers unmerged.")
    for hook in adapters.hooks:
        hook.remove()
    del lm.od_lora
    return lm


def without_lora(cfg: dict) -> dict:
    """An XP config (plain dict) for the merged model: `lora` left out of `trainable`."""
    cfg = dict(cfg)
    trainable = cfg.get('trainable', 'all')
    if isinstance(trainable, str):
        cfg['trainable'] = 'all' if trainable == LORA else trainable
    else:
        rest = [p for p in trainable if p != LORA]
        cfg['trainable'] = rest or 'all'
    return cfg
