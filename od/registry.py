"""Conditioner registry: a config's `conditioners.<attr>.model` name -> conditioner factory.

AudioCraft 1.3 builds conditioners in `audiocraft.models.builders.get_conditioner_provider`, a
closed if/elif. Every AudioCraft path that builds an LM (`builders.get_lm_model`, called by the
MusicGen solver's `build_model`, by `continue_from`, and by `models.loaders.load_lm_model`)
looks that function up through the module global at call time, so `install()` rebinding that
one name is enough for training and inference to go through this registry. It is the only
place od touches AudioCraft's namespace; nothing in site-packages is edited.

Adding a conditioner = one class + one `@register_conditioner('name')` + one YAML in
`config/conditioner/`. Modules outside `od` can register too: list them in the config key
`registry_modules` (imported before the model is built, in every process).
"""
from __future__ import annotations

import importlib
import inspect
import logging
import typing as tp

logger = logging.getLogger(__name__)

Factory = tp.Callable[..., tp.Any]  # (output_dim, [device], [duration], **yaml_args) -> BaseConditioner
_FACTORIES: tp.Dict[str, Factory] = {}
_upstream_get_conditioner_provider: tp.Optional[Factory] = None


def register_conditioner(name: str, *, replace: bool = False) -> tp.Callable[[Factory], Factory]:
    """Decorator registering a conditioner class (or factory function) under `name`.

    The factory is called with `output_dim` and the YAML arguments found under
    `conditioners.<attr>.<name>`; `device` and `duration` (the training segment length) are
    passed too when its signature asks for them.
    """
    def _register(factory: Factory) -> Factory:
        if name in _FACTORIES and _FACTORIES[name] is not factory and not replace:
            raise KeyError(f"Conditioner '{name}' is already registered by {_FACTORIES[name]!r}; "
                           "pass replace=True to override it deliberately.")
        _FACTORIES[name] = factory
        return factory
    return _register


def registered() -> tp.List[str]:
    """Names a config may use as `conditioners.<attr>.model`."""
    _ensure_builtin()
    return sorted(_FACTORIES)


def build_conditioner(model_type: str, output_dim: int, model_args: tp.Dict[str, tp.Any],
                      device: str = 'cpu', duration: tp.Optional[float] = None):
    """Instantiate one conditioner from its registered name and YAML arguments."""
    _ensure_builtin()
    if model_type not in _FACTORIES:
        raise ValueError(f"Unknown conditioner model '{model_type}'. Registered: {registered()}. "
                         "Register it with od.registry.register_conditioner, or list the module "
                         "that registers it in the config key `registry_modules`.")
    factory = _FACTORIES[model_type]
    params = inspect.signature(factory).parameters
    kwargs = dict(model_args)
    if 'device' in params:
        kwargs['device'] = device
    if 'duration' in params:
        kwargs['duration'] = duration
    return factory(output_dim=output_dim, **kwargs)


def get_conditioner_provider(output_dim: int, cfg):
    """Registry-backed replacement for AudioCraft's `get_conditioner_provider` (same contract)."""
    from audiocraft.modules.conditioners import ConditioningProvider
    from audiocraft.utils.utils import dict_from_config

    device = cfg.device
    duration = cfg.dataset.segment_duration
    cond_cfg = getattr(cfg, 'conditioners')
    dict_cfg = {} if cond_cfg is None else dict_from_config(cond_cfg)
    provider_args = dict_cfg.pop('args', {})
    # Dataset-side text augmentation knobs that AudioCraft also keeps under `args`.
    provider_args.pop('merge_text_conditions_p', None)
    provider_args.pop('drop_desc_p', None)
    conditioners = {}
    for attribute, spec in dict_cfg.items():
        model_type = spec['model']
        conditioners[str(attribute)] = build_conditioner(
            model_type, output_dim, spec.get(model_type) or {}, device=device, duration=duration)
    return ConditioningProvider(conditioners, device=device, **provider_args)


def import_modules(modules: tp.Iterable[str]) -> None:
    """Import modules that register conditioners (config key `registry_modules`)."""
    for module in modules or []:
        importlib.import_module(module)


def install() -> None:
    """Route AudioCraft's LM builder through this registry. Idempotent."""
    global _upstream_get_conditioner_provider
    from audiocraft.models import builders
    _ensure_builtin()
    if builders.get_conditioner_provider is not get_conditioner_provider:
        _upstream_get_conditioner_provider = builders.get_conditioner_provider
        builders.get_conditioner_provider = get_conditioner_provider


def _ensure_builtin() -> None:
    # AudioCraft's own conditioners and od's are registered on first use, so that importing
    # od.registry stays cheap (no torch/transformers import until a model is built).
    if 'lut' not in _FACTORIES:
        importlib.import_module('od.conditioners')
