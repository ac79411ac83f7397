"""Is a concept learned? Pretrain a tiny text-to-music LM, learn concept rows, classify generations.

1. a tiny MusicGen with the tiny T5 learns "music in the style of chiptune" (every TI template,
   with the plain word) -> that concept's audio from the cached tokens (the TI solver with
   `trainable=all`) — the stand-in for a pretrained MusicGen that knows words for styles;
2. textual inversion learns new `<concept>` rows with that LM frozen
   (`dora run solver=musicgen/textual_inversion_debug continue_from=...`);
3. the solver's own evaluation (generate from "music in the style of <concept>", nearest
   centroid on code histograms against each concept's cached tokens) is run with the initial
   rows (baseline) and with the learned `best.pt`; and, as the ceiling, with the plain word
   the LM was pretrained on ("music in the style of chiptune"): rows that reach it steer the
   frozen LM as well as the word it knows.

Used by tests/test_textual_inversion.py and benchmarks/textual_inversion_ab.py.
"""
from __future__ import annotations

import time
import typing as tp
from pathlib import Path

from ..core.environment import ROOT
from ..workflow.launch import run_dora

CONCEPTS = ('chiptune', 'ambient')


def word_templates() -> tp.List[str]:
    """The textual-inversion prompt templates with the plain word in place of the concept tokens
    ("music in the style of chiptune"): what the stand-in for a pretrained MusicGen learns."""
    from omegaconf import OmegaConf
    cfg = OmegaConf.load(ROOT / 'config' / 'solver' / 'musicgen' / 'textual_inversion.yaml')
    return [t.replace('{concept}', '{name}') for t in cfg.textual_inversion.templates]


def _dora(args: tp.Sequence[str], dora_dir: Path) -> None:
    proc = run_dora(args, dora_dir, capture=True)
    if proc.returncode:
        raise RuntimeError(f"dora run {' '.join(args)} failed:\n{proc.stderr[-4000:]}")


def pretrain_text_lm(egs: Path, t5: Path, updates: int, segment: float = 1.0) -> Path:
    """Train a whole tiny LM on plain-word prompts in this process; returns its checkpoint."""
    import torch

    from ..workflow import runs
    args = ['solver=musicgen/textual_inversion_debug', f'datasource.train={egs}',
            f'conditioners.description.t5_ti.name={t5}', 'trainable=all', 'label=pretrain',
            f"textual_inversion.templates=[{','.join(repr(t) for t in word_templates())}]",
            f'optim.updates_per_epoch={updates}',
            'optim.lr=3e-3', 'classifier_free_guidance.training_dropout=0.2', 'optim.epochs=1',
            'dataset.num_workers=0', f'dataset.segment_duration={segment}']
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only contend
    try:
        solver = runs.build_solver(args)
        solver.run_stage('train', solver.train)
        solver.run_stage('valid', solver.valid)
        solver.update_best_state_from_stage('valid')  # continue_from reads the best state
        solver.save_checkpoints()
    finally:
        torch.set_num_threads(threads)
    return solver.checkpoint_path()


def ti_args(work: Path, t5: Path, start: Path, updates: int, tokens_num: int, epochs: int = 1) -> tp.List[str]:
    return ['solver=musicgen/textual_inversion_debug', f'datasource.train={work}/egs/concepts',
            f'conditioners.description.t5_ti.name={t5}', f'continue_from={start}',
            f'textual_inversion.embeds_dir={work}/embeds', f'textual_inversion.tokens_num={tokens_num}',
            f'optim.epochs={epochs}', f'optim.updates_per_epoch={updates}', 'dataset.segment_duration=1',
            'generate.lm.gen_duration=1', 'dataset.num_workers=1', 'textual_inversion.eval_samples=8',
            'generate.audio.strategy=peak']


def learn_and_measure(work: Path, pretrain_updates: int = 60, ti_updates: int = 40, tokens_num: int = 2,
                      per_concept: int = 4, samples: int = 16, lr: float = 0.05) -> tp.Dict[str, float]:
    """Pretrain in-process, textual inversion with `dora run`, then baseline vs learned accuracies."""
    import torch

    from ..conditioners.concepts import load_concepts
    from ..inference.tiny import write_tiny_t5
    from ..solvers.concept_data import prepare_concepts, write_synthetic_concepts
    from ..workflow import runs

    work = Path(work)
    t5 = write_tiny_t5(work / 'tiny-t5')
    write_synthetic_concepts(work / 'raw', CONCEPTS, per_concept=per_concept, duration=4.0, seed=1)
    prepare_concepts('concepts', work / 'raw', chunk_seconds=2.0, dataset_dir=work / 'dataset',
                     egs_dir=work / 'egs', progress=False)
    with runs.dora_dir_at(work / 'xps'):  # every XP of this check
        start = time.time()
        checkpoint = pretrain_text_lm(work / 'egs' / 'concepts', t5, pretrain_updates)
        pretrain_s = time.time() - start
        start = time.time()
        args = ti_args(work, t5, checkpoint, ti_updates, tokens_num) + [f'optim.lr={lr}']
        _dora(args, work / 'xps')
        ti_s = time.time() - start
        solver = runs.get_solver_from_xp(runs.get_xp(args), restore=True, load_best=False,
                                          override_cfg={'textual_inversion': {'eval_samples': samples}})
    best = solver.embeds_folder() / 'best.pt'
    solver.model.eval()
    cond = solver.ti_conditioner
    for concept, rows in solver.initial_rows.items():
        cond.add_concept(concept, rows=rows)
    out = {'chance': 1 / len(CONCEPTS), 'pretrain_seconds': pretrain_s, 'ti_seconds': ti_s, 'best': str(best)}
    for name, prompt in (('baseline', None), ('words', word_templates()[0]), ('learned', None)):
        if name == 'learned':
            load_concepts(solver.model, best)
        torch.manual_seed(0)
        metrics, _ = solver.concept_accuracy(samples, prompt)
        out.update({f'{name}_{k}': v for k, v in metrics.items()})
    return out
