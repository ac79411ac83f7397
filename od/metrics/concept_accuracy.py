"""Is a concept learned? Pretrain a tiny text-to-music LM, learn concept rows, classify generations.

1. a tiny MusicGen with the tiny T5 (`conditioner=text2music`) learns the synthetic example
   genres from their text descriptions (`dora run`) — the stand-in for a pretrained MusicGen;
2. two genres become concepts (`od.data.concepts`), and textual inversion learns their rows with
   that LM frozen (`dora run solver=musicgen/textual_inversion_debug continue_from=...`);
3. the same evaluation the solver runs (`evaluate()`: generate from "music in the style of
   <concept>", nearest centroid on code histograms against each concept's cached tokens) is run
   with the initial rows (baseline) and with the learned `best.pt`.

Used by tests/test_textual_inversion.py and benchmarks/textual_inversion_ab.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

from ..environment import ROOT

CONCEPTS = ('chiptune', 'ambient')


def _dora(args: tp.Sequence[str], dora_dir: Path) -> None:
    env = dict(os.environ, AUDIOCRAFT_DORA_DIR=str(dora_dir), HF_HUB_OFFLINE='1')
    env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env.get('PATH', '')
    proc = subprocess.run([sys.executable, '-m', 'dora', 'run', *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"dora run {' '.join(args)} failed:\n{proc.stderr[-4000:]}")


def pretrain_args(work: Path, t5: Path, updates: int) -> tp.List[str]:
    egs = work / 'egs' / 'example'
    return ['solver=musicgen/debug', 'conditioner=text2music', f'conditioners.description.t5.name={t5}',
            'conditioners.description.t5.word_dropout=0', f'datasource.train={egs}/train',
            f'datasource.valid={egs}/valid', f'datasource.evaluate={egs}/valid', f'datasource.generate={egs}/valid',
            'optim.epochs=1', f'optim.updates_per_epoch={updates}', 'optim.lr=3e-3', 'dataset.batch_size=8',
            'dataset.segment_duration=1', 'generate.lm.gen_duration=1', 'dataset.valid.num_samples=4',
            'dataset.generate.num_samples=2', 'generate.every=0', 'generate.audio.strategy=peak',
            'dataset.num_workers=1', 'classifier_free_guidance.training_dropout=0.2']


def ti_args(work: Path, t5: Path, start: Path, updates: int, tokens_num: int, epochs: int = 1) -> tp.List[str]:
    return ['solver=musicgen/textual_inversion_debug', f'datasource.train={work}/egs/concepts',
            f'conditioners.description.t5_ti.name={t5}', f'continue_from={start}',
            f'textual_inversion.embeds_dir={work}/embeds', f'textual_inversion.tokens_num={tokens_num}',
            f'optim.epochs={epochs}', f'optim.updates_per_epoch={updates}', 'dataset.segment_duration=1',
            'generate.lm.gen_duration=1', 'dataset.num_workers=1', 'textual_inversion.eval_samples=8',
            'generate.audio.strategy=peak']


def learn_and_measure(work: Path, pretrain_updates: int = 150, ti_updates: int = 60, tokens_num: int = 2,
                      per_concept: int = 4, samples: int = 16) -> tp.Dict[str, float]:
    """Both stages with `dora run`, then baseline vs learned accuracies (see module doc)."""
    import torch

    from .. import train
    from ..data.concepts import prepare_concepts, write_synthetic_concepts
    from ..data.example import write_example_dataset
    from ..models.concepts import load_concepts
    from ..models.tiny import write_tiny_t5

    work = Path(work)
    t5 = write_tiny_t5(work / 'tiny-t5')
    write_example_dataset(work / 'dataset' / 'example', work / 'egs' / 'example', per_genre=(6, 1),
                          duration=4.0, progress=False)
    write_synthetic_concepts(work / 'raw', CONCEPTS, per_concept=per_concept, duration=4.0, seed=1)
    prepare_concepts('concepts', work / 'raw', chunk_seconds=2.0, dataset_dir=work / 'dataset',
                     egs_dir=work / 'egs', progress=False)
    start = time.time()
    pre = pretrain_args(work, t5, pretrain_updates)
    _dora(pre, work / 'xps')
    pre_xp = train.main.get_xp(pre)
    checkpoint = work / 'xps' / 'xps' / pre_xp.sig / 'checkpoint.th'
    pretrain_s = time.time() - start
    start = time.time()
    args = ti_args(work, t5, checkpoint, ti_updates, tokens_num)
    _dora(args, work / 'xps')
    ti_s = time.time() - start
    previous, train.main.dora.dir = train.main.dora.dir, work / 'xps'
    try:
        solver = train.get_solver_from_xp(train.main.get_xp(args), restore=True, load_best=False,
                                          override_cfg={'textual_inversion': {'eval_samples': samples}})
    finally:
        train.main.dora.dir = previous
    best = solver.embeds_folder() / 'best.pt'
    cond = solver.ti_conditioner
    for concept, rows in solver.initial_rows.items():
        cond.add_concept(concept, rows=rows)
    torch.manual_seed(0)
    baseline = solver.evaluate()
    load_concepts(solver.model, best)
    torch.manual_seed(0)
    learned = solver.evaluate()
    out = {'chance': 1 / len(CONCEPTS), 'pretrain_seconds': pretrain_s, 'ti_seconds': ti_s, 'best': str(best)}
    out.update({f'baseline_{k}': v for k, v in baseline.items()})
    out.update({f'learned_{k}': v for k, v in learned.items()})
    return out
