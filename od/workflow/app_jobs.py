"""What the concept app does, without the UI: run a training XP, read its progress, generate.

Training runs as `dora run solver=... textual_inversion.*=...` in its own process group (the
same command a user types), so Stop kills it and the OS frees the model; progress is read from
the XP's `history.json` (one entry per epoch). Generation loads the XP that wrote an embeddings
file through od's one loader (`od.inference.load('//sig/<sig>')`: its frozen LM and T5, the same
ODMusicGen od.generate uses), adds the selected learned concepts with `load_concepts`, and keeps
that model until Stop or another XP is needed.

Everything that arrives from the UI or from a file is validated like user input before it is
used: concepts must be the dataset's own, numbers must be in range, an embeddings file must lie
inside --embeds, and the XP a concepts file names must be a signature of an XP inside the Dora
directory that trained this dataset into this embeddings folder (its argv hashes back to that
signature). Nothing read from a file can point the app at another folder or another config.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import typing as tp
from pathlib import Path

PLOTTED = ('train/ce', 'valid/ce', 'evaluate/concept_accuracy', 'evaluate/fad_clap', 'evaluate/clap_score')
# (low, high) of every number a user can type; checked before anything starts.
LIMITS = {'tokens_num': (1, 64), 'lr': (1e-7, 1.0), 'epochs': (1, 1000), 'updates_per_epoch': (1, 100_000),
          'batch_size': (1, 1024), 'duration': (0.1, 120.0)}
MAX_PROMPT = 1000


def checked_number(name: str, value: tp.Any, integer: bool = True) -> tp.Union[int, float]:
    """`value` as a number inside LIMITS[name], else ValueError saying the allowed range."""
    low, high = LIMITS[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number between {low:g} and {high:g} (got {value!r}).") from None
    if not math.isfinite(number) or not low <= number <= high or (integer and number != int(number)):
        kind = 'a whole number' if integer else 'a number'
        raise ValueError(f"{name} must be {kind} between {low:g} and {high:g} (got {value!r}).")
    return int(number) if integer else number


class ConceptApp:
    """State behind the UI: one dataset, one embeddings folder, at most one training run."""

    def __init__(self, dataset: tp.Union[str, Path], embeds: tp.Union[str, Path],
                 base_overrides: tp.Sequence[str] = ('solver=musicgen/textual_inversion',)):
        from ..solvers.concept_data import read_manifests
        self.dataset, self.embeds = Path(dataset).resolve(), Path(embeds).resolve()
        _, self.meta = read_manifests(self.dataset)
        self.concepts = sorted(self.meta['concepts'])
        self.base = list(base_overrides)
        self.proc: tp.Optional[subprocess.Popen] = None
        self.stopped = False  # the user pressed Stop (the run's exit code is then SIGTERM's)
        self.xp_folder: tp.Optional[Path] = None
        self._model: tp.Optional[tp.Any] = None    # generation model (an ODMusicGen of the XP)
        self._model_sig: tp.Optional[str] = None
        self._loaded: tp.Tuple[str, ...] = ()
        cfg = self.xp(self.base).cfg
        self.defaults = {'tokens_num': int(cfg.textual_inversion.tokens_num), 'lr': float(cfg.optim.lr),
                         'epochs': int(cfg.optim.epochs), 'updates_per_epoch': int(cfg.optim.updates_per_epoch),
                         'batch_size': int(cfg.dataset.batch_size)}

    def xp(self, overrides: tp.Sequence[str]):
        from . import runs
        return runs.get_xp(list(overrides) + [f'datasource.train={self.dataset}',
                                                     f'textual_inversion.embeds_folder={self.embeds}'])

    # --- training ----------------------------------------------------------------------------
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, concepts: tp.Sequence[str], tokens_num: int, lr: float, epochs: int,
              updates_per_epoch: int, batch_size: int) -> str:
        if self.running():
            return "A training run is already going: stop it first."
        if not concepts:
            return "Choose at least one concept."
        unknown = [c for c in concepts if c not in self.concepts]
        if unknown:
            return f"Unknown concept(s) {unknown}: this dataset has {self.concepts}."
        try:
            tokens_num = checked_number('tokens_num', tokens_num)
            lr = checked_number('lr', lr, integer=False)
            epochs = checked_number('epochs', epochs)
            updates_per_epoch = checked_number('updates_per_epoch', updates_per_epoch)
            batch_size = checked_number('batch_size', batch_size)
        except ValueError as exc:
            return f"Not started: {exc}"
        self.stop()
        self.stopped = False
        overrides = self.base + [f"textual_inversion.concepts=[{','.join(concepts)}]",
                                 f'textual_inversion.tokens_num={tokens_num}', f'optim.lr={lr}',
                                 f'optim.epochs={epochs}', f'optim.updates_per_epoch={updates_per_epoch}',
                                 f'dataset.batch_size={batch_size}']
        xp = self.xp(overrides)
        self.xp_folder = Path(xp.folder)
        self.xp_folder.mkdir(parents=True, exist_ok=True)
        argv = overrides + [f'datasource.train={self.dataset}', f'textual_inversion.embeds_folder={self.embeds}']
        from .launch import start_dora
        with open(self.xp_folder / 'app.log', 'w') as log:
            self.proc = start_dora(argv, stdout=log, stderr=subprocess.STDOUT)
        return f"Training {', '.join(concepts)} in XP {xp.sig} ({self.xp_folder})."

    def stop(self) -> str:
        """Stop training (its process and model go) and drop the generation model."""
        message = "Nothing was training."
        if self.running():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            message = "Training stopped; its model is freed."
            self.stopped = True
        self._model = self._model_sig = None
        self._loaded = ()
        import gc
        gc.collect()
        return message

    def history(self) -> tp.List[dict]:
        path = self.xp_folder / 'history.json' if self.xp_folder else None
        return json.loads(path.read_text()) if path and path.exists() else []

    def status(self) -> tp.Tuple[str, tp.List[tp.Tuple[int, str, float]]]:
        """(one line of status, [(epoch, metric, value)] for the plots)."""
        rows = [(epoch, name, float(entry[name.split('/')[0]][name.split('/', 1)[1]]))
                for epoch, entry in enumerate(self.history(), 1) for name in PLOTTED
                if name.split('/', 1)[1] in entry.get(name.split('/')[0], {})]
        if self.proc is None:
            return "Idle.", rows
        epochs = len(self.history())
        code = self.proc.poll()
        if code is None:
            return f"Training: {epochs} epoch(s) done.", rows
        if code == 0:
            return f"Finished: {epochs} epoch(s).", rows
        if self.stopped:
            return f"Stopped after {epochs} epoch(s) (run again to resume the XP).", rows
        tail = (self.xp_folder / 'app.log').read_text()[-1500:] if self.xp_folder else ''
        return f"Failed (exit {code}). Log tail:\n{tail}", rows

    # --- embeddings and generation -------------------------------------------------------------
    def embeddings(self) -> tp.List[str]:
        """Concepts files under the embeddings folder, newest first."""
        files = sorted(self.embeds.rglob('*.pt'), key=lambda p: p.stat().st_mtime, reverse=True)
        return [str(p.relative_to(self.embeds)) for p in files]

    def generate(self, files: tp.Sequence[str], prompt: str, duration: float, out: Path) -> Path:
        """Generate one clip for `prompt` with the concepts of `files` (relative to --embeds)."""
        import torch
        from audiocraft.data.audio import audio_write

        from ..conditioners.concepts import load_concepts, read_concepts
        if not files:
            raise ValueError("Choose a learned embeddings file (Refresh if the list is empty).")
        duration = checked_number('duration', duration, integer=False)
        prompt = str(prompt or '')
        if len(prompt) > MAX_PROMPT:
            raise ValueError(f"The prompt is longer than {MAX_PROMPT} characters.")
        paths = [self.embeddings_file(f) for f in files]
        sigs = {read_concepts(p).get('xp') for p in paths}
        if len(sigs) != 1:
            raise ValueError("Choose files from one training run (one XP) at a time.")
        model = self._generation_model(self.checked_sig(sigs.pop()))
        for path in paths:
            load_concepts(model, path)
        cfg = model.lm.cfg  # the XP's own generation settings
        model.set_generation_params(duration=duration, use_sampling=cfg.generate.lm.use_sampling,
                                    top_k=cfg.generate.lm.top_k, top_p=cfg.generate.lm.top_p,
                                    temperature=cfg.generate.lm.temp,
                                    cfg_coef=cfg.classifier_free_guidance.inference_coef)
        with torch.no_grad():
            wav = model.generate_from(descriptions=[prompt])[0].cpu()
        return audio_write(out, wav, model.sample_rate, strategy='peak')

    def embeddings_file(self, name: str) -> Path:
        """The concepts file `name` (relative to --embeds), refused unless it lies inside it."""
        path = (self.embeds / str(name)).resolve()
        if not path.is_relative_to(self.embeds) or path.suffix != '.pt' or not path.is_file():
            raise ValueError(f"{name} is not a concepts file under {self.embeds}.")
        return path

    def checked_sig(self, sig: tp.Any) -> str:
        """A concepts file's `xp`, accepted only for an XP of this Dora directory that trained
        this dataset into this embeddings folder (its argv must hash back to `sig`)."""
        from ..core import xps
        from . import runs
        if not isinstance(sig, str) or not xps.SIG.match(sig):
            raise ValueError(f"The concepts file names XP {sig!r}, which is not a Dora signature.")
        root = xps.xps_root().resolve()
        folder = (root / sig).resolve()
        if not folder.is_relative_to(root) or not (folder / '.argv.json').is_file():
            raise ValueError(f"XP {sig} is not in this Dora directory ({root}): it cannot be loaded.")
        try:
            xp = runs.get_xp_from_sig(sig)
            cfg = xp.cfg
        except Exception as exc:  # an .argv.json that does not compose
            raise ValueError(f"XP {sig} cannot be read ({type(exc).__name__}): refusing to load it.") from None
        if xp.sig != sig or Path(str(cfg.datasource.train)).resolve() != self.dataset \
                or Path(str(cfg.textual_inversion.embeds_folder)).resolve() != self.embeds:
            raise ValueError(f"XP {sig} did not train this dataset into {self.embeds}: refusing to load it.")
        return sig

    def _generation_model(self, sig: str):
        if self._model_sig != sig:
            from ..inference import load
            self._model = None
            self._model = load(f'//sig/{sig}')
            self._model_sig = sig
        return self._model
