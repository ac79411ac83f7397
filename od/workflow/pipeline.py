"""One pipeline run: its paths and options, stage records (reports/<name>/pipeline.json) and the Dora
command it trains with. The stages themselves are in od/workflow/stages.py."""
from __future__ import annotations

import hashlib
import json
import os
import time
import typing as tp
from pathlib import Path

from ..core.environment import ROOT, MissingWeightsError
from . import recipe

STAGES = ('plan', 'ingest', 'checkpoint', 'cache', 'train', 'export', 'soundtrack', 'evaluate', 'report')
SCALES = ('debug', 'small', 'medium', 'large')
SEEDS = (0, 1)


class PipelineError(RuntimeError):
    """A user-facing stop: the message says what to do."""


class Pipeline:
    """One run's paths, its stage records (`reports/<name>/pipeline.json`) and its Dora command."""

    def __init__(self, raw: tp.Union[str, Path], name: str, scale: str = 'debug', overrides: tp.Sequence[str] = (),
                 clip: tp.Optional[str] = None, valid_fraction: float = 0.2, audio_from: tp.Optional[str] = None,
                 soundtrack_seconds: float = 30., work: tp.Union[str, Path] = ROOT,
                 log: tp.Callable[[str], None] = print, clap_model: tp.Optional[str] = None,
                 vggish_checkpoint: tp.Optional[str] = None, lora: bool = False,
                 epochs: tp.Optional[int] = None, gpu_memory: tp.Optional[float] = None, sync: bool = False):
        if scale not in SCALES:
            raise PipelineError(f"--scale must be one of {', '.join(SCALES)}")
        if scale == 'debug' and (lora or epochs is not None or gpu_memory is not None):
            raise PipelineError("--lora, --epochs and --gpu-memory size the real-scale recipe (--scale small|"
                                "medium|large); the debug scale trains solver=musicgen/video_debug (Dora overrides "
                                "change it).")
        self.raw, self.name, self.scale = Path(raw).resolve(), name, scale
        self.user_overrides = list(overrides)
        self.clip = clip
        self.sync = sync   # time-aligned video conditioning (conditioner=clipemb2music_sync)
        self.lora, self.epochs, self.gpu_memory = lora, epochs, gpu_memory
        self.valid_fraction, self.audio_from, self.seconds = valid_fraction, audio_from, soundtrack_seconds
        # Everything a run writes lives under `work` (the repository by default): dataset/, egs/,
        # checkpoints/, reports/ and, outside the repository, Dora's XPs (<work>/logs/xps/, unless
        # AUDIOCRAFT_DORA_DIR names another place). `dora run` always runs from the repository.
        self.work, self.log = Path(work).resolve(), log
        self.in_checkout = self.work == ROOT.resolve()
        self.dora_dir: tp.Optional[Path] = None   # None: the team config's (the repository's logs/)
        if os.environ.get('AUDIOCRAFT_DORA_DIR'):
            self.dora_dir = Path(os.environ['AUDIOCRAFT_DORA_DIR']).resolve()
        elif not self.in_checkout:
            self.dora_dir = self.work / 'logs'
        self.dataset, self.egs = self.work / 'dataset' / name, self.work / 'egs' / name
        self.report_dir = self.work / 'reports' / name
        self.export_dir = self.work / 'checkpoints' / name
        self.start_ckpt = self.work / 'checkpoints' / f'{name}_start.th'
        self.tiny_clip = self.work / 'checkpoints' / 'tiny-clip'   # --clip tiny (random, seeded)
        self.state_file = self.report_dir / 'pipeline.json'
        self.clap_model, self.vggish_checkpoint = clap_model, vggish_checkpoint  # None: od's defaults
        self.state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self._architecture: tp.Optional[tp.List[str]] = None

    # ---- the training command ---------------------------------------------------------
    def clip_name(self) -> tp.Optional[str]:
        if self.clip == 'tiny':
            return str(self.tiny_clip)
        if self.clip and Path(self.clip).exists():
            return str(Path(self.clip).resolve())  # dora run changes directory: absolute paths only
        return self.clip

    def source(self) -> tp.Optional[str]:
        """The MusicGen the run starts from (None: the debug scale starts from random weights)."""
        return None if self.scale == 'debug' else recipe.source_model(self.scale)

    def preset_overrides(self) -> tp.List[str]:
        """The solver preset of this scale and the conditioner (before the LM's shape)."""
        conditioner = 'clipemb2music_sync' if self.sync else 'clipemb2music'
        if self.scale == 'debug':
            args = ['solver=musicgen/video_debug']  # the debug MusicGen + clip_frames
            if self.sync:
                args.append(f'conditioner={conditioner}')
        else:
            args = [recipe.solver_preset(self.lora), f'model/lm/model_scale={self.scale}', f'conditioner={conditioner}']
        if self.clip_name():
            args.append(f'conditioners.self_wav.{self.video_conditioner}.name={self.clip_name()}')
        return args

    @property
    def video_conditioner(self) -> str:
        return 'clip_sync' if self.sync else 'clip_frames'

    def architecture(self) -> tp.List[str]:
        """Overrides giving the LM the shape of the weights it starts from (none for upstream
        MusicGen at its own scale; the tiny models of `od.tiny hub` are narrower)."""
        if self._architecture is None:
            from .make_ckpt import architecture_overrides
            self._architecture = [] if self.source() is None else \
                architecture_overrides(self.source(), self.preset_overrides())
        return self._architecture

    def model_overrides(self) -> tp.List[str]:
        """What decides the model (the starting checkpoint is built from these)."""
        return self.preset_overrides() + self.architecture()

    def ingested(self) -> bool:
        return (self.egs / 'train' / 'data.jsonl').exists()

    def durations(self) -> tp.Dict[str, tp.List[float]]:
        """Split -> clip durations (s): the manifests' once ingest wrote them, before that the
        ones ingest will write, read from the raw files' headers (od.data.ingest.probe_durations)."""
        if self.ingested():
            valid = self.egs / 'valid' / 'data.jsonl'
            return {'train': recipe.manifest_durations(self.egs / 'train' / 'data.jsonl'),
                    'valid': recipe.manifest_durations(valid) if valid.exists() else []}
        from ..data.ingest import probe_durations
        return probe_durations(self.raw, self.valid_fraction, self.audio_from)

    def schedule(self) -> tp.List[str]:
        """Epochs, updates, segment, warm-up and validation sized from the dataset (empty for
        the debug scale, whose preset is sized already)."""
        if self.scale == 'debug':
            return []
        from . import runs
        user = self.user_overrides
        cfg = runs.compose(self.model_overrides() + user)
        fixed = {o.split('=', 1)[0].lstrip('+') for o in user}
        durations = self.durations()
        values = recipe.schedule(durations['train'], durations['valid'], cfg, self.epochs, fixed)
        return recipe.as_overrides(values, user)

    def dset_args(self) -> tp.List[str]:
        """How `dora run` finds the dataset: `dset=audio/<name>` (the config ingest writes into
        the repository), or, for a run under another --work, `dset=audio/manifests` with the
        manifests' folders as `datasource.*` overrides, so that nothing is written into the checkout."""
        if self.in_checkout:
            return [f'dset=audio/{self.name}']
        rates, channels = [], []   # from the sidecars, as ingest's dset config takes them
        for sidecar in sorted(self.dataset.glob('*/*.json')):
            meta = json.loads(sidecar.read_text())
            rates.append(int(meta['sample_rate']))
            channels.append(int(meta['channels']))
        args = ['dset=audio/manifests', f'datasource.max_sample_rate={max(rates, default=32000)}',
                f'datasource.max_channels={min(2, max(channels, default=1))}',
                f'datasource.train={self.egs / "train"}']
        return args + [f'datasource.{split}={self.egs / "valid"}' for split in ('valid', 'evaluate', 'generate')]

    def train_args(self) -> tp.List[str]:
        args = self.model_overrides() + self.dset_args()
        if self.scale != 'debug':
            args += [f'continue_from={self.start_ckpt}'] + self.schedule()
            if not any(o.startswith('dataset.num_workers=') for o in self.user_overrides):
                args.append(f'dataset.num_workers={loader_workers()}')  # not in the XP signature
        return args + self.user_overrides

    def command(self) -> str:
        import shlex
        where = f"AUDIOCRAFT_DORA_DIR={shlex.quote(str(self.dora_dir))} " if self.dora_dir is not None else ''
        return (f"cd {shlex.quote(str(ROOT))} && {where}dora run "
                + ' '.join(shlex.quote(a) for a in self.train_args()))

    def dora_at(self) -> tp.ContextManager:
        """Inside the block, this process reads and writes XPs where the run's `dora run` does."""
        import contextlib
        if self.dora_dir is None:
            return contextlib.nullcontext()
        from . import runs
        return runs.dora_dir_at(self.dora_dir)

    def xp(self):
        import dataclasses

        from . import runs
        with self.dora_at():
            xp = runs.get_xp(self.train_args())
        if self.dora_dir is not None:   # Dora's XP reads its folder from the shared config at each access
            xp.dora = dataclasses.replace(xp.dora, dir=self.dora_dir)
        return xp

    # ---- stage records ------------------------------------------------------------------
    def up_to_date(self, stage: str, key: str) -> bool:
        return self.state.get(stage, {}).get('key') == key

    def record(self, stage: str, key: str, started: float, **outputs: tp.Any) -> None:
        from ..core.atomic import write_json
        self.state[stage] = {'key': key, 'seconds': round(time.time() - started, 1), **outputs}
        write_json(self.state_file, self.state)

    def check(self) -> tp.List[str]:
        """Inputs and every weight the run needs, before any file is written or model loaded:
        one PipelineError lists all that are missing. Returns notes on optional metrics."""
        from . import runs
        if not self.raw.is_dir():
            raise PipelineError(f"{self.raw}: no such folder (give the folder of your videos)")
        try:
            cfg = runs.compose(self.preset_overrides() + self.user_overrides)
        except Exception as exc:  # od's ConfigError or Hydra's own: an override that does not compose
            raise PipelineError(f"these overrides do not compose: {str(exc).strip().splitlines()[0]}") from None
        if self.clip == 'tiny':  # written by run() after the checks: nothing to look up
            cfg.conditioners = {k: v for k, v in cfg.conditioners.items()
                                if v.get('model') not in ('clip_frames', 'clip_sync')}
        missing = recipe.missing_weights(cfg, self.source())
        if missing:
            raise MissingWeightsError(
                f"{len(missing)} of the weights this run needs {'is' if len(missing) == 1 else 'are'} not on this "
                "machine (nothing was written; od never downloads):\n"
                + '\n'.join(f"{i}. {m}" for i, m in enumerate(missing, 1))
                + "\nTo try the real-scale path without them: python -m od.tiny hub ~/od-tiny-hf, then "
                  "HF_HOME=~/od-tiny-hf on this command (tiny random models under the real names).")
        return recipe.optional_metric_notes(self.clap_model, self.vggish_checkpoint)


def loader_workers() -> int:
    """Data-loading processes for a real-scale run: the preset's 8 on a GPU machine with the
    cores for them; none on a CPU-only one, where the training step is the bottleneck and each
    worker process would re-import torch and AudioCraft."""
    import torch
    if not torch.cuda.is_available():
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def digest(*parts: tp.Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def files_key(paths: tp.Iterable[Path]) -> tp.List[tp.Tuple[str, int, int]]:
    return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(paths) if p.is_file()]
