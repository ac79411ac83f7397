"""Textual inversion: learn `<concept_i>` token rows, with T5 and the LM frozen, from cached tokens.

od's MusicGen solver with three changes (everything else — loss, optimizer step, checkpoints,
resume, DDP, tensorboard — is AudioCraft's):

- data: a prepared concept dataset (`python -m od.concepts`): each item is one chunk's
  cached codec tokens [K, T] and a prompt template filled with its concept
  ("music in the style of <8bit>"); the compression model never encodes during training;
- trainable: `trainable: [concept_embeds]` (the yaml): only the rows of `t5_ti` train and are in
  the optimizer; the codec that made the tokens is checked against the run's by fingerprint;
- every epoch the rows are written to `<embeds_dir>/<dataset>/<xp sig>/epoch_<n>.pt`, plus
  `best.pt` by `textual_inversion.best_metric`; generate writes samples per concept and evaluate
  reports how often generations are recognised as their concept (+ optional FAD/CLAP metrics);
- the XP's `checkpoint.th` (resume, export, `od.inference.load`) holds only the trained rows and
  names its `continue_from` base for the frozen rest (od/solvers/frozen_base.py).
"""
from __future__ import annotations

import logging
import random
import typing as tp
from pathlib import Path

import flashy
import torch
from audiocraft.modules.conditioners import ConditioningAttributes
from audiocraft.solvers import base as ac_base
from omegaconf import open_dict

from ..conditioners import concepts as concept_io
from ..core.safe_load import torch_load
from .concept_data import read_manifests
from .musicgen import MusicGenSolver
from .samples import CLIPPING

logger = logging.getLogger(__name__)


class ConceptTokens(torch.utils.data.Dataset):
    """Cached chunk tokens with a prompt: (codes [K, T_seg] long, prompt, concept)."""

    def __init__(self, entries: tp.Sequence[dict], templates: tp.Sequence[str], frames: int,
                 random_crop: bool = True):
        self.entries, self.templates, self.frames, self.random_crop = list(entries), list(templates), frames, random_crop

    def __len__(self) -> int:
        return len(self.entries)

    def read(self, entry: dict) -> torch.Tensor:
        """[K, T] tokens of one chunk; ValueError naming the file when unusable."""
        codes = torch_load(entry['encoded_path'], 'token file')
        if not isinstance(codes, torch.Tensor) or codes.dim() != 2:
            raise ValueError(f"{entry['encoded_path']} holds no [K, T] token tensor")
        if codes.shape[-1] < self.frames:
            raise ValueError(f"{entry['encoded_path']} has {codes.shape[-1]} frames, the segment needs "
                             f"{self.frames}: lower dataset.segment_duration or re-run prep with longer chunks.")
        return codes.long()

    def __getitem__(self, index: int) -> tp.Tuple[torch.Tensor, str, str]:
        entry = self.entries[index]
        try:
            codes = self.read(entry)
        except (ValueError, OSError) as exc:  # broke after the start-up check: skip it, train on
            self.failed = getattr(self, 'failed', 0) + 1
            logger.warning("Skipping %s (%s)", entry['encoded_path'], exc)
            if self.failed >= len(self.entries):
                raise
            return self[(index + 1) % len(self.entries)]
        start = random.randint(0, codes.shape[-1] - self.frames) if self.random_crop else 0
        template = random.choice(self.templates) if self.random_crop else self.templates[0]
        concept = entry['concept']
        return codes[:, start:start + self.frames], fill_template(template, concept), concept


def usable_entries(entries: tp.Sequence[dict], frames: int, log: tp.Any = None) -> tp.List[dict]:
    """The entries whose token file reads as a [K, >= frames] tensor; the others are reported by
    name and counted, and training goes on without them (ValueError only when none is left)."""
    probe = ConceptTokens(entries, ['{concept}'], frames, random_crop=False)
    good, bad = [], []
    for entry in entries:
        try:
            probe.read(entry)
            good.append(entry)
        except (ValueError, OSError) as exc:
            bad.append(str(exc))
    if bad:
        (log or logger).warning("Skipping %d of %d token files that cannot be used:\n  %s", len(bad), len(entries),
                                '\n  '.join(bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ''))
    if not good:
        raise ValueError(f"No usable token file among {len(entries)} (first problem: {bad[0] if bad else 'none'}); "
                         "re-run `python -m od.concepts` for this dataset.")
    return good


def fill_template(template: str, concept: str) -> str:
    """`{concept}` -> `<concept>` (its learned tokens), `{name}` -> the plain word."""
    return template.format(concept=f'<{concept}>', name=concept)


def collate(items):
    codes, prompts, concepts = zip(*items)
    return torch.stack(codes), list(prompts), list(concepts)


def ti_attribute(cfg) -> str:
    """Name of the condition attribute whose conditioner is `t5_ti` (e.g. `description`)."""
    names = [attr for attr, spec in cfg.conditioners.items() if spec.get('model') == 't5_ti']
    if len(names) != 1:
        raise ValueError("solver=musicgen/textual_inversion needs exactly one conditioner with "
                         "model: t5_ti (use conditioner=text2music_ti).")
    return names[0]


class TextualInversionSolver(MusicGenSolver):
    """MusicGen solver that learns concept token rows only (see module doc)."""

    def build_dataloaders(self) -> None:
        # Runs before build_model: the concept list decides which tokens the conditioner adds.
        cfg, ti = self.cfg, self.cfg.textual_inversion
        if not cfg.datasource.get('train'):
            raise ValueError("No concept dataset: pass dset=concepts/<name> (written by "
                             "`python -m od.concepts <name> <audio-root>`) or datasource.train=egs/<name>.")
        self.entries, self.concepts_meta = read_manifests(cfg.datasource.train)
        available = sorted(self.concepts_meta['concepts'])
        chosen = list(ti.concepts or available)
        unknown = [c for c in chosen if c not in available]
        if unknown:
            raise ValueError(f"concepts {unknown} are not in {cfg.datasource.train} (it has {available}).")
        self.concepts = chosen
        self.entries = [e for e in self.entries if e['concept'] in chosen]
        self._centroids: tp.Optional[tp.Dict[str, torch.Tensor]] = None  # concept_centroids()
        attr = ti_attribute(cfg)
        with open_dict(cfg):
            args = cfg.conditioners[attr].t5_ti
            args.concepts = chosen
            args.tokens_num = ti.tokens_num
        self.frame_rate = self.concepts_meta['codec']['frame_rate']
        frames = int(round(cfg.dataset.segment_duration * self.frame_rate))
        self.entries = usable_entries(self.entries, frames, self.logger)
        train = ConceptTokens(self.entries, ti.templates, frames)
        valid = ConceptTokens(self.entries[:cfg.dataset.valid.num_samples or None], ti.templates, frames,
                              random_crop=False)
        batch = cfg.dataset.batch_size
        updates = cfg.optim.updates_per_epoch or max(1, len(train) // batch)
        sampler = torch.utils.data.RandomSampler(train, replacement=True, num_samples=updates * batch)
        workers = cfg.dataset.num_workers
        self.dataloaders = {
            'train': torch.utils.data.DataLoader(train, batch, sampler=sampler, collate_fn=collate,
                                                 num_workers=workers, drop_last=True),
            'valid': torch.utils.data.DataLoader(valid, batch, collate_fn=collate, num_workers=0)}

    def build_model(self) -> None:
        super().build_model()  # trained-only checkpoints: od/solvers/trained_only.py
        self.check_codec()
        self.ti_conditioner = self.model.condition_provider.conditioners[ti_attribute(self.cfg)]
        self.initial_rows = self.ti_conditioner.concept_rows()
        metrics = list(self.cfg.textual_inversion.metrics or [])
        if metrics:  # missing weights or environment: fail now, not at the first evaluation
            from ..core.environment import MissingWeightsError
            suite = self._metric_suite()
            try:
                suite.check_metrics(metrics, self._metric_options())
            except MissingWeightsError as exc:
                raise MissingWeightsError(f"{exc}\n(textual_inversion.metrics={metrics} monitors each concept with "
                                          "them; 'textual_inversion.metrics=[]' trains without.)") from exc

    def check_codec(self) -> None:
        """Refuse tokens that another codec wrote (they would teach the LM nonsense)."""
        from ..encoders.compression import fingerprint
        codec = self.concepts_meta['codec']
        if fingerprint(self.compression_model) != codec['fingerprint']:
            raise ValueError(
                f"The tokens in {self.cfg.datasource.train} were encoded by another codec "
                f"({codec['checkpoint']}, seed {codec['seed']}) than this run's "
                f"({self.cfg.compression_model_checkpoint}, seed {self.cfg.seed}). Re-run "
                f"`python -m od.concepts ... --compression-model {self.cfg.compression_model_checkpoint} "
                f"--seed {self.cfg.seed}`.")

    def fit_loaded_lm(self, lm_state: dict) -> None:
        # A continue_from base may hold rows for other concepts or another tokens_num: those
        # are dropped, and this run's fresh rows are kept (see TextualInversionT5's load hook).
        name = f'condition_provider.conditioners.{ti_attribute(self.cfg)}.concept_embeds'
        if name in lm_state and lm_state[name].shape != self.ti_conditioner.concept_embeds.shape:
            del lm_state[name]
        super().fit_loaded_lm(lm_state)

    def train(self):
        # MusicGenSolver.train expects an AudioDataset; ours is ConceptTokens.
        return ac_base.StandardSolver.train(self)

    def _prepare_tokens_and_attributes(self, batch, check_synchronization_points: bool = False):
        """Cached tokens [B, K, T] and prompts -> (conditions, tokens, padding mask). No encoding."""
        codes, prompts, _ = batch
        audio_tokens = codes.to(self.device)
        attributes = [ConditioningAttributes(text={ti_attribute(self.cfg): p}) for p in prompts]
        attributes = self.model.cfg_dropout(attributes)
        attributes = self.model.att_dropout(attributes)
        tokenized = self.model.condition_provider.tokenize(attributes)
        with self.autocast:
            condition_tensors = self.model.condition_provider(tokenized)
        return condition_tensors, audio_tokens, torch.ones_like(audio_tokens, dtype=torch.bool)

    # --- what happens after each epoch -------------------------------------------------------
    def run_epoch(self):
        super().run_epoch()
        if flashy.distrib.is_rank_zero():
            self.save_concepts()

    def embeds_folder(self) -> Path:
        from dora import git_save
        ti = self.cfg.textual_inversion
        if ti.get('embeds_folder'):  # the app's --embeds: <folder>/<sig>
            return Path(git_save.to_absolute_path(ti.embeds_folder)) / self.xp.sig
        return Path(git_save.to_absolute_path(ti.embeds_dir)) / self.concepts_meta['name'] / self.xp.sig

    def save_concepts(self) -> Path:
        """`epoch_<n>.pt` now, and `best.pt` when the configured metric improved."""
        metrics = {f'{stage}/{k}': float(v) for stage, m in self._pending_metrics.items()
                   for k, v in m.items() if isinstance(v, (int, float))}
        folder = self.embeds_folder()
        path = concept_io.save_concepts(self.ti_conditioner, folder / f'epoch_{self.epoch:03d}.pt',
                                        epoch=self.epoch, xp=self.xp.sig, metrics=metrics,
                                        dataset=self.concepts_meta['name'])
        name, mode = self.cfg.textual_inversion.best_metric, self.cfg.textual_inversion.best_mode
        if name in metrics:
            past = [h.get(name.split('/')[0], {}).get(name.split('/', 1)[1]) for h in self.history]
            past = [v for v in past if v is not None]
            better = min if mode == 'min' else max
            if not past or better(past + [metrics[name]]) == metrics[name]:
                concept_io.save_concepts(self.ti_conditioner, folder / 'best.pt', epoch=self.epoch,
                                         xp=self.xp.sig, metrics=metrics, dataset=self.concepts_meta['name'])
        return path

    def generate(self) -> dict:
        """`samples/<epoch>/<concept>_<i>.wav`: `generate.num_samples` per concept (prompt template 0)."""
        from audiocraft.data.audio import audio_write
        self.model.eval()
        codes = self.generate_concept_codes(self.cfg.dataset.generate.num_samples)
        folder = Path(self.xp.folder) / self.cfg.generate.path / str(self.epoch)
        folder.mkdir(parents=True, exist_ok=True)
        with torch.no_grad(), CLIPPING.summary('generate'):
            for concept, tokens in codes.items():
                wavs = self.compression_model.decode(tokens, None).cpu()
                for i, wav in enumerate(wavs):
                    CLIPPING.count(audio_write, folder / f'{concept}_{i}', wav, self.cfg.sample_rate,
                                   strategy=self.cfg.generate.audio.strategy)
        return {}

    @torch.no_grad()
    def generate_concept_codes(self, per_concept: int, prompt: tp.Optional[str] = None) -> tp.Dict[str, torch.Tensor]:
        """concept -> generated codes [per_concept, K, T] for the prompt (default: template 0)."""
        template = prompt or self.cfg.textual_inversion.templates[0]
        steps = int(round((self.cfg.generate.lm.gen_duration or self.cfg.dataset.segment_duration) * self.frame_rate))
        out = {}
        for concept in self.concepts:
            attrs = [ConditioningAttributes(text={ti_attribute(self.cfg): fill_template(template, concept)})
                     for _ in range(per_concept)]
            out[concept] = self.model.generate(None, attrs, max_gen_len=steps, **self.generation_params,
                                               cfg_coef=self.cfg.classifier_free_guidance.inference_coef)
        return out

    def evaluate(self) -> dict:
        """Concept accuracy of generations (nearest centroid on codes) + configured audio metrics."""
        self.model.eval()
        ti = self.cfg.textual_inversion
        metrics, codes = self.concept_accuracy(ti.eval_samples)
        if ti.metrics:
            metrics.update(self.audio_metrics(codes))
        return metrics

    @torch.no_grad()
    def concept_accuracy(self, per_concept: int, prompt: tp.Optional[str] = None
                         ) -> tp.Tuple[tp.Dict[str, float], tp.Dict[str, torch.Tensor]]:
        """How often generations from `prompt` (default: template 0) are recognised as their concept:
        nearest centroid on code histograms, centroids from each concept's cached tokens.
        Returns ({concept_accuracy, acc_<concept>...}, the generated codes per concept)."""
        from ..metrics.code_classes import classify
        card = self.compression_model.cardinality
        centroids = self.concept_centroids()
        codes = self.generate_concept_codes(per_concept, prompt)
        labels = [c for c, t in codes.items() for _ in range(t.shape[0])]
        guesses = classify(torch.cat(list(codes.values())), centroids, card)
        metrics = {'concept_accuracy': sum(g == t for g, t in zip(guesses, labels)) / len(labels)}
        for concept in codes:  # share of <concept> generations recognised as that concept
            own = [g for g, t in zip(guesses, labels) if t == concept]
            metrics[f'acc_{concept}'] = sum(g == concept for g in own) / len(own)
        return metrics, codes

    def concept_centroids(self) -> tp.Dict[str, torch.Tensor]:
        """concept -> mean code histogram of its cached tokens; read once per run (they never change)."""
        if self._centroids is None:
            from ..metrics.code_classes import class_centroids
            by_concept: tp.Dict[str, tp.List[torch.Tensor]] = {}
            for entry in self.entries:
                by_concept.setdefault(entry['concept'], []).append(
                    torch_load(entry['encoded_path'], 'token file').long())
            self._centroids = class_centroids(by_concept, self.compression_model.cardinality)
        return self._centroids

    def audio_metrics(self, codes: tp.Dict[str, torch.Tensor]) -> dict:
        """`textual_inversion.metrics` (e.g. [fad_clap, clap_score]) per concept, from od's metric suite:
        generated clips vs that concept's reference chunks; CLAP score against the prompt written
        with the concept's name. Logged as `<metric>_<concept>` and their mean `<metric>`."""
        import tempfile

        from audiocraft.data.audio import audio_write
        suite = self._metric_suite()
        ti = self.cfg.textual_inversion
        options = self._metric_options()
        out: tp.Dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix='od-ti-eval-') as tmp:
            for concept, tokens in codes.items():
                wavs = self.compression_model.decode(tokens, None).cpu()
                generated = [str(audio_write(Path(tmp) / f'{concept}_{i}', wav, self.cfg.sample_rate,
                                             strategy='peak')) for i, wav in enumerate(wavs)]
                reference = [e['audio_path'] for e in self.entries if e['concept'] == concept]
                texts = [ti.templates[0].format(concept=concept, name=concept)] * len(generated)
                report = suite.compute_metrics(list(ti.metrics), reference, generated, texts, options)
                for name in ti.metrics:
                    out[f'{name}_{concept}'] = report[name]
        for name in ti.metrics:
            out[name] = sum(out[f'{name}_{c}'] for c in codes) / len(codes)
        return out

    def _metric_options(self):
        """The suite's options for `textual_inversion.metrics` (checked at build, used per evaluate)."""
        return self._metric_suite().MetricOptions(clap_model=self.cfg.textual_inversion.get('clap_model'),
                                                  progress=False,
                                                  stats_cache=str(Path(self.xp.folder) / 'metric_stats'))

    def _metric_suite(self):
        try:
            from ..metrics import suite
        except ImportError as exc:
            raise RuntimeError(f"textual_inversion.metrics={list(self.cfg.textual_inversion.metrics)} needs "
                               "od.metrics.suite (FAD_CLAP, CLAP score), which this checkout lacks; "
                               "set textual_inversion.metrics=[] to train without them.") from exc
        return suite
