"""What `od.pipeline` trains at a real scale (`--scale small|medium|large`), decided before
anything heavy runs.

- **Weights, all at once** (`missing_weights`): every weight the run's composed config loads
  (the MusicGen it starts from, the compression model, each conditioner's frozen encoder) is
  located before a file is written; one message lists every missing one with where it goes.
  The metric models (VGGish, CLAP) are optional: their absence is reported, not fatal.
- **The one-GPU recipe** (`model_overrides`): `solver=musicgen/finetune` (`--lora`:
  `finetune_lora`) at the scale's micro-batch and accumulation (config/model/lm/model_scale/),
  with the LM architecture read from the weights it starts from (`make_ckpt.architecture_overrides`).
- **A schedule sized from the dataset** (`schedule`): an epoch covers the training audio once
  (updates = training seconds / (segment x batch)), the segment is no longer than the longest
  training clip, warm-up and validation are sized to the run, not to AudioCraft's cluster run.
- **The memory plan** (`memory_plan_lines`): od.doctor --plan's lines for the detected GPU or
  `--gpu-memory`; a plan that does not fit stops the run with the override that would.
"""
from __future__ import annotations

import math
import typing as tp
from pathlib import Path

from ..core.environment import MissingWeightsError


class RecipeError(RuntimeError):
    """The run cannot go ahead as configured; the message says what to change."""


def source_model(scale: str) -> str:
    """The upstream MusicGen a scale starts from."""
    return f'facebook/musicgen-{scale}'


def solver_preset(lora: bool) -> str:
    return 'solver=musicgen/finetune_lora' if lora else 'solver=musicgen/finetune'


# ---- weights ------------------------------------------------------------------------------------
def conditioner_weights(cfg) -> tp.List[tp.Tuple[str, tp.Callable[[], tp.Any]]]:
    """(what, locate) for the frozen encoder of each conditioner in `cfg` that loads weights."""
    found = []
    for attr, spec in (cfg.get('conditioners') or {}).items():
        kind = spec.get('model')
        args = spec.get(kind) or {}
        if kind in ('t5', 't5_ti'):
            from ..conditioners.t5 import locate_t5
            name = str(args.get('name'))
            found.append((f"text encoder {name} ({attr})", lambda name=name: locate_t5(name)))
        elif kind in ('clip_frames', 'clip_sync'):
            from ..encoders.clip import locate_clip
            name, pretrained = str(args.get('name')), args.get('pretrained')
            found.append((f"CLIP {name} ({attr})", lambda n=name, p=pretrained: locate_clip(n, p)))
        elif kind == 'clap_audio':
            from ..encoders.clap import locate_clap
            name = args.get('name')
            found.append((f"CLAP {name or 'default'} ({attr})", lambda name=name: locate_clap(name)))
    return found


def missing_weights(cfg, source: tp.Optional[str]) -> tp.List[str]:
    """The error message of every weight `cfg` (and the `source` LM, if any) needs that is not on
    this machine; empty when all are here. Reads no weights: only looks the files up."""
    from ..encoders.compression import resolve_compression_checkpoint
    from ..inference.loaders import locate_model
    checks: tp.List[tp.Tuple[str, tp.Callable[[], tp.Any]]] = []
    if source is not None:
        checks.append((f"MusicGen {source}", lambda: locate_model(source)))
    spec = str(cfg.get('compression_model_checkpoint'))
    checks.append((f"compression model {spec}", lambda: resolve_compression_checkpoint(spec)))
    checks += conditioner_weights(cfg)
    missing = []
    for what, locate in checks:
        try:
            locate()
        except (MissingWeightsError, FileNotFoundError) as exc:
            missing.append(f"{what}:\n    " + str(exc).strip().replace('\n', '\n    '))
    return missing


def optional_metric_notes(clap_model: tp.Optional[str], vggish_checkpoint: tp.Optional[str]) -> tp.List[str]:
    """One line per report metric whose weights or environment are missing (it will be skipped)."""
    from ..metrics import suite
    options = suite.MetricOptions(vggish_checkpoint=vggish_checkpoint, clap_model=clap_model)
    notes = []
    for name in ('fad_vggish', 'fad_clap'):
        try:
            suite.check_metrics([name], options)
        except Exception as exc:  # missing TF env or weights: the report says it was skipped
            notes.append(f"{name} (optional) will be skipped: {str(exc).strip().splitlines()[0][:240]}")
    return notes


# ---- schedule -----------------------------------------------------------------------------------
def manifest_durations(manifest: Path) -> tp.List[float]:
    """Durations (s) of the files a manifest lists."""
    import json
    return [float(json.loads(line)['duration']) for line in manifest.read_text().splitlines() if line.strip()]


def schedule(train_seconds: tp.Sequence[float], valid_seconds: tp.Sequence[float], cfg,
             epochs: tp.Optional[int] = None, fixed: tp.Collection[str] = ()) -> tp.Dict[str, tp.Any]:
    """Overrides (key -> value) that size the preset `cfg` to a dataset.

    `train_seconds`/`valid_seconds`: the clips' durations. `cfg` is composed with the user's
    overrides, and `fixed` names the keys they set: those keep the user's value (read from
    `cfg`), the rest are sized here. The segment is the preset's, or the longest training clip
    when all are shorter (AudioCraft pads shorter clips with silence: padding every segment past
    the longest clip only costs time). An epoch is one pass over the training audio in segments;
    the warm-up is at most a tenth of the run and always shorter than it (AudioCraft's cosine
    schedule divides by total - warm-up). A warm-up the user fixed that is not shorter than the
    run is refused (`check_schedule`), never changed behind their back.
    """
    if not train_seconds:
        raise RecipeError("no training clips: the train manifest is empty")
    segment = float(cfg.dataset.segment_duration)
    longest = max(train_seconds)
    if longest < segment and 'dataset.segment_duration' not in fixed:
        segment = float(max(1, math.floor(longest)))
    batch = int(cfg.dataset.batch_size)
    if 'optim.updates_per_epoch' in fixed:
        updates = int(cfg.optim.updates_per_epoch)
    else:
        updates = max(1, math.ceil(sum(train_seconds) / (segment * batch)))
    if 'optim.epochs' in fixed or epochs is None:
        epochs = int(cfg.optim.epochs)
    total = int(epochs) * updates
    out: tp.Dict[str, tp.Any] = {
        'optim.epochs': int(epochs), 'optim.updates_per_epoch': updates, 'dataset.segment_duration': segment,
        'dataset.valid.num_samples': max(1, math.ceil(sum(valid_seconds) / segment)) if valid_seconds else 1,
        'dataset.generate.num_samples': max(1, min(int(cfg.dataset.generate.num_samples), len(valid_seconds) or 1)),
    }
    if cfg.schedule.get('lr_scheduler') == 'cosine' and 'schedule.cosine.warmup' not in fixed:
        out['schedule.cosine.warmup'] = min(int(cfg.schedule.cosine.warmup), max(1, total // 10), total - 1)
    return out


def check_schedule(cfg) -> int:
    """Build the learning-rate schedule AudioCraft's solver builds for `cfg` (its scheduler, its
    `optim.epochs` x `optim.updates_per_epoch` updates) on a one-parameter optimizer and step it
    through the whole run; returns the number of updates. RecipeError names the override to
    change when the schedule cannot run (a warm-up as long as a short run divides by zero)."""
    import torch
    from audiocraft.solvers import builders
    total = int(cfg.optim.epochs) * int(cfg.optim.updates_per_epoch)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.)
    name = cfg.schedule.get('lr_scheduler')
    try:
        scheduler = builders.get_lr_scheduler(optimizer, cfg.schedule, total)
        for _ in range(total if scheduler is not None else 0):
            optimizer.step()
            scheduler.step()
    except (ZeroDivisionError, AssertionError, ValueError) as exc:
        warmup = (cfg.schedule.get(name) or {}).get('warmup') if name else None
        fix = (f"a warm-up shorter than the run (schedule.{name}.warmup={max(0, total // 10)}) or a longer run "
               "(--epochs, optim.epochs=...)") if warmup is not None else "another schedule.lr_scheduler"
        raise RecipeError(f"the learning-rate schedule cannot run: schedule.lr_scheduler={name}"
                          + (f" with schedule.{name}.warmup={warmup}" if warmup is not None else '')
                          + f" over {total} updates (optim.epochs={int(cfg.optim.epochs)} x optim.updates_per_epoch="
                          f"{int(cfg.optim.updates_per_epoch)}) fails in AudioCraft's scheduler "
                          f"({type(exc).__name__}: {exc}). Use {fix}.") from None
    return total


def as_overrides(values: tp.Mapping[str, tp.Any], user: tp.Sequence[str] = ()) -> tp.List[str]:
    """`key=value` strings, leaving out the keys the user set themselves (theirs win)."""
    mine = {o.split('=', 1)[0].lstrip('+') for o in user}
    return [f"{k}={_value(v)}" for k, v in values.items() if k not in mine]


def _value(v: tp.Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# ---- memory plan --------------------------------------------------------------------------------
def device_memory(gpu_memory_gb: tp.Optional[float]) -> tp.Tuple[tp.Optional[int], str, bool]:
    """(bytes, name, is a GPU) of the device the plan is checked against: `--gpu-memory`, or
    the first visible GPU, or (None, 'CPU', False)."""
    import torch

    from ..solvers.memory_plan import GiB
    if gpu_memory_gb:
        return int(gpu_memory_gb * GiB), f"a {gpu_memory_gb:g} GiB GPU (--gpu-memory)", True
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return int(props.total_memory), props.name, True
    return None, 'CPU', False


def memory_plan_lines(cfg, gpu_memory_gb: tp.Optional[float]) -> tp.List[str]:
    """The plan of `cfg` as od.doctor --plan prints it; raises RecipeError naming the override
    that fits when the plan does not fit the device."""
    from ..solvers import memory_plan
    device, name, gpu = device_memory(gpu_memory_gb)
    result = memory_plan.plan(cfg, device_is_gpu=gpu)
    lines = memory_plan.describe(result, device, name)
    if device is not None and not result.fits(device):
        fix = memory_plan.suggestion(cfg, result, device)
        raise RecipeError("the training run does not fit " + name + ":\n  " + '\n  '.join(lines)
                          + f"\nAdd the override that fits and run the same command again: {fix}")
    if not gpu:
        updates = int(cfg.optim.epochs) * int(cfg.optim.updates_per_epoch)
        lines.append(f"no GPU visible: training runs on the CPU, which is slow for a real MusicGen "
                     f"({updates} updates of {result.batch} x {result.segment:g}-s segments, "
                     f"{result.params:,} parameters); it goes on. Plan a GPU run with --gpu-memory GB.")
    return lines
