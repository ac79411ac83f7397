"""od's MusicGen solver: AudioCraft's, with weights resolved offline, checkpoints that load
with `torch.load(weights_only=True)` and keep only what trains (trained_only.py), `trainable`
patterns and LoRA adapters (od/solvers/lora.py), and gradient accumulation (accumulate.py)."""
from __future__ import annotations

import typing as tp

import torch
from audiocraft.solvers import builders
from audiocraft.solvers import musicgen as ac_musicgen
from omegaconf import DictConfig, OmegaConf, open_dict

from ..conditioners import provider as od_provider
from ..conditioners import time_aligned
from ..encoders.compression import resolve_compression_checkpoint
from ..metrics import suite
from . import evaluation, frozen_base, token_cache, trained_only
from . import lora as lora_lib
from .accumulate import accumulate_steps, accumulated_train_step
from .model_files import complete_checkpoint
from .samples import media_sample_names
from .trainable import apply_trainable, only_trainable, spec_of, trainable_patterns


def check_manifests(cfg) -> None:
    """Every configured split has its manifest (`<folder>/data.jsonl[.gz]` or a .jsonl file), or a
    ConfigError naming the split, the path and the command that writes it."""
    from pathlib import Path

    from ..core.environment import ConfigError
    checked = set()  # valid, evaluate and generate usually share one manifest: read it once
    for split, value in (cfg.get('datasource') or {}).items():
        if split not in ('train', 'valid', 'evaluate', 'generate') or not value:
            continue  # (datasource also holds max_sample_rate, max_channels)
        path = Path(str(value))
        if path.is_file() or any((path / name).is_file() for name in ('data.jsonl', 'data.jsonl.gz')):
            key = path.resolve()
            if key not in checked:
                checked.add(key)
                check_entries(split, path)
            continue
        raise ConfigError(
            f"datasource.{split}: no manifest at {path}/data.jsonl. Write it from the audio files with "
            f"`python -m od.manifest <dataset folder>/{split} {path} --require .json`, or let "
            "`python -m od.ingest <raw folder> --name <name>` write dataset, manifests and dset config.")


def check_entries(split: str, path) -> None:
    """A ConfigError (the file, the line, what to do) for a manifest line AudioCraft's loader
    would crash on, entries whose audio file is gone or whose sidecar would crash a batch: before
    the model is built, not mid-epoch."""
    from ..core.environment import ConfigError
    from ..data.manifest import ManifestError, broken_sidecars, missing_files, read_manifest
    try:
        entries = read_manifest(path)
    except ManifestError as exc:
        raise ConfigError(f"datasource.{split}: {exc}") from None
    gone = missing_files(entries)
    if gone:
        raise ConfigError(
            f"datasource.{split}: {len(gone)} of {len(entries)} files listed in {path} are gone "
            f"({', '.join(gone[:3])}{', ...' if len(gone) > 3 else ''}): put them back, or rewrite the manifest "
            f"with `python -m od.manifest <audio folder> {path}`.")
    broken = broken_sidecars(entries)
    if broken:
        listed = '; '.join(f"{audio}: {why}" for audio, why in broken[:3]) + ('; ...' if len(broken) > 3 else '')
        raise ConfigError(
            f"datasource.{split}: {len(broken)} of {len(entries)} files listed in {path} have a sidecar that "
            f"would stop training at its first batch ({listed}): fix or remove those .json files, or rewrite "
            f"the manifest with `python -m od.manifest <audio folder> {path} --require .json`, which leaves "
            "such files out.")


class MusicGenSolver(ac_musicgen.MusicGenSolver):
    """MusicGen training through od's conditioner registry (installed by od.train)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        token_cache.install(self)  # cache.path: AudioCraft's token cache with plain-data entries

    def build_model(self) -> None:
        # Fail first, not at the first evaluation hours from here: TF env, checkpoints, CLAP.
        self.od_metrics = evaluation.configured_metrics(self.cfg)
        if self.od_metrics:
            suite.check_metrics(self.od_metrics, evaluation.metric_options(self.cfg, self.folder))
            self.logger.info("Evaluate stage metrics (od): %s", ', '.join(self.od_metrics))
        # Resolve where the compression model comes from first, so a missing file is a clear
        # MissingWeightsError at start-up rather than a hub retry loop or a deep traceback.
        # The XP config keeps the user's value; only AudioCraft's loader sees the local one.
        original = self.cfg.compression_model_checkpoint
        with open_dict(self.cfg):
            self.cfg.compression_model_checkpoint = resolve_compression_checkpoint(original)
        try:
            # AudioCraft's debug compression model is random: build it (and the LM) from the XP
            # seed, so every process that rebuilds this XP (resume, export, evaluation) gets the
            # same codec the LM was trained on. The caller's RNG stream is left untouched.
            with torch.random.fork_rng():
                torch.manual_seed(self.cfg.seed)
                super().build_model()
        finally:
            with open_dict(self.cfg):
                self.cfg.compression_model_checkpoint = original
        self._continue_best_source_keys.append(frozen_base.FROZEN_BASE)  # kept for continue_from
        self._frozen_meta: tp.Optional[tp.Tuple[str, str]] = None  # (base source, digest)
        od_provider.install(self.model)  # unread segment audio out, dropout copies shallow
        time_aligned.bind(self.model, self.compression_model.frame_rate)  # clip_sync's token rate
        self._apply_trainable()
        self.accumulate = accumulate_steps(self.cfg)
        if self.accumulate > 1:
            batch = self.cfg.dataset.batch_size
            self.logger.info("Gradient accumulation: %d micro-batches of %d per update (batch %d per process).",
                             self.accumulate, batch // self.accumulate, batch)
        self.log_memory_plan()

    def log_memory_plan(self) -> None:
        """The lines of `python -m od.doctor --plan` for this run (od/solvers/memory_plan.py)."""
        from . import memory_plan
        try:
            gpu = str(self.device).startswith('cuda')
            codec = sum(p.numel() for p in self.compression_model.parameters())
            self.memory_plan = memory_plan.plan(self.cfg, lm=self.model, device_is_gpu=gpu, compression_params=codec,
                                                compression_model=self.compression_model)
        except Exception as exc:  # the plan informs; it never stops a run
            self.logger.warning("Memory plan unavailable: %s: %s", type(exc).__name__, exc)
            return
        total = torch.cuda.get_device_properties(0).total_memory if gpu else None
        for line in memory_plan.describe(self.memory_plan, total, torch.cuda.get_device_name(0) if gpu else ''):
            self.logger.info("Memory plan: %s", line)
        fix = memory_plan.suggestion(self.cfg, self.memory_plan, total) if total else None
        if fix:
            self.logger.warning("Memory plan: to fit this GPU: %s", fix)

    def run_step(self, idx: int, batch, metrics: dict) -> dict:
        """AudioCraft's step, or with `optim.accumulate=N` one update from N micro-batches
        (see accumulate.py). Validation always runs the whole batch (no gradients to keep)."""
        batch = self._finite_samples(batch)
        if self.is_training and getattr(self, 'accumulate', 1) > 1:
            return accumulated_train_step(self, batch, metrics, self.accumulate)
        return super().run_step(idx, batch, metrics)

    def _finite_samples(self, batch):
        """The batch without samples whose audio holds NaN/Inf (a file changed after its manifest
        was checked): each such file is named once and skipped, instead of one NaN loss ending the
        run. A batch of only such samples trains on silence (the warning says so)."""
        if len(batch) != 2 or not torch.is_tensor(batch[0]) or not batch[0].is_floating_point():
            return batch  # a token-cache batch: `(infos,)`, codes, no audio
        audio, infos = batch  # [B, C, T], B infos
        bad = ~torch.isfinite(audio).flatten(1).all(dim=1)  # [B]
        if not bad.any():
            return batch
        seen = self.__dict__.setdefault('_od_non_finite', set())
        for info, is_bad in zip(infos, bad.tolist()):
            path = str(getattr(getattr(info, 'meta', None), 'path', '?'))
            if is_bad and path not in seen:
                seen.add(path)
                self.logger.warning("Skipping %s: its audio holds NaN/Inf values (rewrite the manifest with "
                                    "`python -m od.manifest`, which leaves such files out)", path)
        if bad.all():
            return torch.nan_to_num(audio, nan=0., posinf=0., neginf=0.), infos
        keep = ~bad
        return audio[keep], [info for info, k in zip(infos, keep.tolist()) if k]

    def build_dataloaders(self) -> None:
        check_manifests(self.cfg)
        super().build_dataloaders()

    def evaluate_audio_generation(self) -> dict:
        """AudioCraft's generation metrics (kld, text_consistency, ...) plus od's suite."""
        od_metrics = getattr(self, 'od_metrics', [])
        if not od_metrics:
            return super().evaluate_audio_generation()
        with evaluation.without_od_metrics(self.cfg):  # AudioCraft's `fad` is not od's
            metrics = super().evaluate_audio_generation()
        return {**metrics, **evaluation.run_od_metrics(self, od_metrics)}

    def generate_audio(self) -> dict:
        """AudioCraft's generation stage, with samples named by their video (see samples.py);
        a `generate.lm.top_k` above the codebook size keeps every code (torch.topk refuses it)."""
        if int(self.generation_params.get('top_k') or 0) > self.model.card:
            self.generation_params['top_k'] = int(self.model.card)
        with media_sample_names():
            return super().generate_audio()

    def _apply_trainable(self) -> None:
        """Add LoRA adapters when `trainable` names `lora`, freeze all but `cfg.trainable`, and
        rebuild the optimizer over what trains."""
        spec = spec_of(self.cfg)
        patterns = trainable_patterns(spec)
        if patterns is None:
            n = sum(p.numel() for p in self.model.parameters())
            self.logger.info("Training all %d LM parameters (trainable=all).", n)
            return
        if self.cfg.fsdp.use:
            raise ValueError("trainable patterns and LoRA are not supported with FSDP; use trainable=all.")
        if lora_lib.uses_lora(spec):
            settings = lora_lib.settings_from_cfg(self.cfg)
            adapters = lora_lib.apply(self.model, settings)
            self.best_state.update('model', self.model)  # its copy gets the adapter tensors too
            kinds = {t.split('.')[-1] for t in adapters.linears} | ({lora_lib.FUSED_PARAMETER} if adapters.fused else set())
            self.logger.info("%s (%s).", adapters.describe(), ', '.join(sorted(kinds)))
        n_train, n_total = apply_trainable(self.model, spec)
        groups = only_trainable(builders.get_optim_parameter_groups(self.model))
        # The attributes are registered as stateful by name: replacing them is enough.
        self.optimizer = builders.get_optimizer(groups, self.cfg.optim)
        self.lr_scheduler = builders.get_lr_scheduler(self.optimizer, self.cfg.schedule, self.total_updates)
        self.logger.info("Training %d of %d LM parameters (%.2f%%) matching %s; the rest is frozen.",
                         n_train, n_total, 100 * n_train / max(1, n_total), list(spec) if not isinstance(spec, str) else spec)

    def state_dict(self) -> dict:
        # flashy stores the XP config as an omegaconf DictConfig, whose pickled metadata holds a
        # collections.defaultdict; torch's weights_only unpickler refuses those whatever the
        # allow-list, so resuming would fail on torch >= 2.6. A plain container (interpolations
        # kept) carries the same config and rebuilds with OmegaConf.create().
        state = super().state_dict()
        if isinstance(state.get('xp.cfg'), DictConfig):
            state['xp.cfg'] = OmegaConf.to_container(state['xp.cfg'], resolve=False)
        # AudioCraft's EMA keeps its averages in a defaultdict(dict), refused by the same
        # unpickler (optim.ema.use=true, as in the finetune presets): stored as a plain dict
        # (its load_state_dict copies into the live averages, so nothing else changes).
        ema = state.get('ema')
        if isinstance(ema, dict) and isinstance(ema.get('state'), dict):
            state['ema'] = {**ema, 'state': {name: dict(values) for name, values in ema['state'].items()}}
        if self._frozen_meta is None:  # nothing frozen, or no base loaded (yet): stays whole
            return state
        return trained_only.strip(state, self.model, self._frozen_meta)

    def load_state_dict(self, state: dict) -> None:
        """AudioCraft's, after completing a trained-only checkpoint from its frozen base; a plain
        base loaded into a LoRA run gets the fresh adapters."""
        meta = state.get(frozen_base.FROZEN_BASE)
        state = complete_checkpoint(state)
        best = frozen_base.lm_state(state, 'best_state')
        if self.cfg.continue_from and 'model' not in state and best and trained_only.has_frozen(self.model):
            # Another checkpoint (AudioCraft passes only its best state): it becomes this run's
            # frozen base, named with a digest of what stays frozen, in every checkpoint written.
            self._frozen_meta = trained_only.base_meta_for_continue(self.cfg.continue_from, best, self.model)
        elif meta:
            self._frozen_meta = (meta['source'], meta['digest'])
        for key in frozen_base.LM_HOLDERS:
            lm = frozen_base.lm_state(state, key)
            if lm is not None:
                self.fit_loaded_lm(lm)
        state.pop(frozen_base.FROZEN_BASE, None)
        super().load_state_dict(state)
        if meta:
            trained_only.resync_frozen_ema(self.ema, self.model)

    def fit_loaded_lm(self, lm_state: dict) -> None:
        """Adjust loaded LM tensors to this run's model, in place (LoRA adapters)."""
        trained_only.refuse_foreign_adapters(lm_state, self.model)
        trained_only.add_missing_adapters(lm_state, self.model)
