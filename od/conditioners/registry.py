"""Conditioner registry: a config's `conditioners.<attr>.model` name -> conditioner factory.

AudioCraft 1.3 builds conditioners in `audiocraft.models.builders.get_conditioner_provider`, a
closed if/elif. Every AudioCraft path that builds an LM (`builders.get_lm_model`, called by the
MusicGen solver's `build_model`, by `continue_from`, and by `models.loaders.load_lm_model`)
looks that function up through the module global at call time, so `install()` rebinding that
one name is enough for training and inference to go through this registry. The fuser's builder,
`get_condition_fuser`, is looked up the same way and rebound with it (to od's fuser, which adds
the `time` method: od/conditioners/time_aligned.py). They are the only AudioCraft names od
rebinds for good; the other places od relies on AudioCraft or laion-clap
internals are declared, with their reasons and pinned checks, in od/conditioners/hooks.py. Nothing in
site-packages is edited.

Adding a conditioner = one class + one `@register_conditioner('name')` + one YAML in
`config/conditioner/`. Modules outside `od` can register too: list them in the config key
`registry_modules` of your own run (imported before the model is built, in every process).

The built-in conditioners (AudioCraft's and od's) are registered by importing the package this
module is part of: od/conditioners/__init__.py imports each of them, and each imports this
module's decorator. The registry itself imports no conditioner.

Modules are imported only when the *user* names them (their command line or config): a model
read from a file (an export, a checkpoint, a downloaded folder) never makes od import the
modules its stored config lists. Loading such a model checks with `require_registered` that
every conditioner it needs is known, and otherwise stops and says which plugin to pass
(`--plugin <module>` on the CLIs, `plugins=[...]` in `od.inference.load`).
"""
from __future__ import annotations

import importlib
import inspect
import logging
import typing as tp

logger = logging.getLogger(__name__)

Factory = tp.Callable[..., tp.Any]  # (output_dim, [device], [duration], **yaml_args) -> BaseConditioner
_FACTORIES: tp.Dict[str, Factory] = {}


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
    return sorted(_FACTORIES)


def build_conditioner(model_type: str, output_dim: int, model_args: tp.Dict[str, tp.Any],
                      device: str = 'cpu', duration: tp.Optional[float] = None):
    """Instantiate one conditioner from its registered name and YAML arguments."""
    if model_type not in _FACTORIES:
        raise ValueError(f"Unknown conditioner model '{model_type}'. Registered: {registered()}. "
                         "Register it with od.conditioners.registry.register_conditioner, or list the module "
                         "that registers it in the config key `registry_modules` (or --plugin).")
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
    from audiocraft.utils.utils import dict_from_config

    from .provider import ODConditioningProvider  # AudioCraft's, without unread audio copies

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
    return ODConditioningProvider(conditioners, device=device, **provider_args)


class PluginRequiredError(ValueError):
    """A model read from a file needs conditioners that no imported module registers."""


def import_modules(modules: tp.Iterable[str]) -> None:
    """Import modules that register conditioners: only modules the user named themselves (their
    own run's `registry_modules`, or `--plugin` / `plugins=`), never names read from a file."""
    for module in modules or []:
        try:
            importlib.import_module(str(module))
        except ImportError as exc:
            raise PluginRequiredError(f"cannot import plugin module '{module}' ({exc}): is it installed or on "
                                      "PYTHONPATH? (run from the folder that holds it, or pip install it)") from exc


def require_registered(cfg: tp.Any, source: tp.Any) -> None:
    """Check that every `conditioners.<attr>.model` of `cfg` (a config read from `source`) is
    registered, without importing anything the config names.

    Raises PluginRequiredError naming the missing conditioners, the modules the file says
    provide them, and how to import those modules if the user trusts them.
    """
    conditioners = cfg.get('conditioners') if hasattr(cfg, 'get') else None
    missing = sorted({str(spec.get('model')) for spec in (conditioners or {}).values()
                      if hasattr(spec, 'get') and spec.get('model') is not None
                      and str(spec.get('model')) not in _FACTORIES})
    if not missing:
        return
    recorded = [str(m) for m in (cfg.get('registry_modules') or [])]
    hint = (f"Its config says they come from {', '.join(recorded)}. " if recorded else '')
    plugin = ' '.join(f'--plugin {m}' for m in recorded) or '--plugin <module>'
    raise PluginRequiredError(
        f"{source} needs conditioner(s) {', '.join(missing)} that no imported module registers. {hint}"
        "od never imports code named by a model file. If you trust that code, import it yourself: "
        f"pass {plugin} (od.inference.load(..., plugins=[...]) from Python).")


def install() -> None:
    """Route AudioCraft's LM builder through this registry. Idempotent. Applied with od's other
    process-wide hooks by `od.conditioners.hooks.install()`, which is what od's code calls."""
    from audiocraft.models import builders

    from .time_aligned import get_condition_fuser
    if builders.get_conditioner_provider is not get_conditioner_provider:  # declared in od/conditioners/hooks.py
        builders.get_conditioner_provider = get_conditioner_provider
    if builders.get_condition_fuser is not get_condition_fuser:  # the `time` fuse method (hooks.py)
        builders.get_condition_fuser = get_condition_fuser
