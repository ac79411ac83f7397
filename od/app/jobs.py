"""What the concept app does, without the UI: run a training XP, read its progress, generate.

Training runs as `dora run solver=... textual_inversion.*=...` in its own process group (the
same command a user types), so Stop kills it and the OS frees the model; progress is read from
the XP's `history.json` (one entry per epoch). Generation loads the XP that wrote an embeddings
file (its frozen LM and T5), adds the selected learned concepts with `load_concepts`, and keeps
that model until Stop or another XP is needed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import typing as tp
from pathlib import Path

from ..environment import ROOT

PLOTTED = ('train/ce', 'valid/ce', 'evaluate/concept_accuracy', 'evaluate/fad_clap', 'evaluate/clap_score')


class ConceptApp:
    """State behind the UI: one dataset, one embeddings folder, at most one training run."""

    def __init__(self, dataset: tp.Union[str, Path], embeds: tp.Union[str, Path],
                 base_overrides: tp.Sequence[str] = ('solver=musicgen/textual_inversion',)):
        from ..data.concepts import read_manifests
        self.dataset, self.embeds = Path(dataset).resolve(), Path(embeds).resolve()
        _, self.meta = read_manifests(self.dataset)
        self.concepts = sorted(self.meta['concepts'])
        self.base = list(base_overrides)
        self.proc: tp.Optional[subprocess.Popen] = None
        self.xp_folder: tp.Optional[Path] = None
        self._solver: tp.Optional[tp.Any] = None   # generation model (a restored TI solver)
        self._solver_sig: tp.Optional[str] = None
        self._loaded: tp.Tuple[str, ...] = ()
        cfg = self.xp(self.base).cfg
        self.defaults = {'tokens_num': int(cfg.textual_inversion.tokens_num), 'lr': float(cfg.optim.lr),
                         'epochs': int(cfg.optim.epochs), 'updates_per_epoch': int(cfg.optim.updates_per_epoch),
                         'batch_size': int(cfg.dataset.batch_size)}

    def xp(self, overrides: tp.Sequence[str]):
        from .. import train
        return train.main.get_xp(list(overrides) + [f'datasource.train={self.dataset}',
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
        self.stop()
        overrides = self.base + [f"textual_inversion.concepts=[{','.join(concepts)}]",
                                 f'textual_inversion.tokens_num={int(tokens_num)}', f'optim.lr={float(lr)}',
                                 f'optim.epochs={int(epochs)}', f'optim.updates_per_epoch={int(updates_per_epoch)}',
                                 f'dataset.batch_size={int(batch_size)}']
        xp = self.xp(overrides)
        self.xp_folder = Path(xp.folder)
        self.xp_folder.mkdir(parents=True, exist_ok=True)
        argv = overrides + [f'datasource.train={self.dataset}', f'textual_inversion.embeds_folder={self.embeds}']
        env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get('PATH', ''))
        with open(self.xp_folder / 'app.log', 'w') as log:
            self.proc = subprocess.Popen([sys.executable, '-m', 'dora', 'run', *argv], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
        self._solver = self._solver_sig = None
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
        from audiocraft.modules.conditioners import ConditioningAttributes

        from ..models.concepts import load_concepts, read_concepts
        from ..solvers.textual_inversion import ti_attribute
        if not files:
            raise ValueError("Choose a learned embeddings file (Refresh if the list is empty).")
        paths = [self.embeds / f for f in files]
        sigs = {read_concepts(p).get('xp') for p in paths}
        if len(sigs) != 1:
            raise ValueError("Choose files from one training run (one XP) at a time.")
        solver = self._generation_solver(sigs.pop())
        for path in paths:
            load_concepts(solver.model, path)
        attrs = [ConditioningAttributes(text={ti_attribute(solver.cfg): prompt})]
        steps = int(round(float(duration) * solver.compression_model.frame_rate))
        with torch.no_grad():
            codes = solver.model.generate(None, attrs, max_gen_len=steps, **solver.generation_params,
                                          cfg_coef=solver.cfg.classifier_free_guidance.inference_coef)
            wav = solver.compression_model.decode(codes, None)[0].cpu()
        return audio_write(out, wav, solver.cfg.sample_rate, strategy='peak')

    def _generation_solver(self, sig: str):
        if self._solver_sig != sig:
            from .. import train
            self._solver = None
            self._solver = train.get_solver_from_sig(sig, restore=True, load_best=False)
            self._solver.model.eval()
            self._solver_sig = sig
        return self._solver
