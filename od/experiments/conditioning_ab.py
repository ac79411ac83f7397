"""The conditioning A/B experiment: train a tiny MusicGen with `dora run`, then measure it.

Synthetic colour data (the class decides the chord) -> a tiny MusicGen with the tiny frozen
encoder of the conditioner (CLIP reads the video beside the audio, CLAP the audio itself as a
reference) -> od.metrics.code_classes.ab_accuracy: the class recovered from generations
conditioned vs nulled. Used by tests/test_clip_frames.py, tests/test_clap.py and
benchmarks/conditioning_ab.py.
"""
from __future__ import annotations

import time
import typing as tp
from pathlib import Path

from ..metrics.code_classes import ab_accuracy, clip_classes
from ..workflow.launch import run_dora


def _clip_setup(work: Path) -> tp.List[str]:
    from ..inference.tiny import write_tiny_clip
    clip = write_tiny_clip(work / 'tiny-clip')
    return ['conditioner=clipemb2music', f'conditioners.self_wav.clip_frames.name={clip}',
            'conditioners.self_wav.clip_frames.n_frames=4']


def _clap_setup(work: Path) -> tp.List[str]:
    from ..inference.tiny import write_tiny_clap
    clap = write_tiny_clap(work / 'tiny-clap')
    return ['conditioner=clapemb2music', f'conditioners.self_wav.clap_audio.name={clap}',
            f'conditioners.self_wav.clap_audio.cache_dir={work / "clap-cache"}']


# conditioner -> (writes its tiny frozen model under the work folder, returns the `dora run`
# overrides that select the conditioner and that model). Each reads the class from the clip's
# own media: CLIP from the video next to the audio, CLAP from the audio itself (as a reference).
CONDITIONERS: tp.Dict[str, tp.Callable[[Path], tp.List[str]]] = {'clip': _clip_setup, 'clap': _clap_setup}


def train_args(work: Path, conditioner_args: tp.Sequence[str], updates: int, segment: float) -> tp.List[str]:
    """`dora run` overrides of the A/B experiment (debug solver, the conditioner, colours)."""
    egs = work / 'egs'
    return ['solver=musicgen/debug', *conditioner_args, 'dset=audio/colors',
            f'datasource.train={egs}/train', f'datasource.valid={egs}/test',
            f'datasource.evaluate={egs}/test', f'datasource.generate={egs}/test',
            'optim.epochs=1', f'optim.updates_per_epoch={updates}', 'optim.lr=3e-3', 'dataset.batch_size=8',
            f'dataset.segment_duration={segment}', f'generate.lm.gen_duration={segment}',
            'dataset.valid.num_samples=8', 'dataset.generate.num_samples=4', 'generate.every=0',
            'generate.audio.strategy=peak',  # loudness normalisation needs >= 0.4 s prompts
            'classifier_free_guidance.training_dropout=0.2']


def train_and_measure(work: Path, updates: int, classes: int = 2, segment: float = 1.0,
                      per_class: tp.Tuple[int, int] = (8, 4), conditioner: str = 'clip') -> tp.Dict[str, float]:
    """Synthetic colour data -> `dora run` (tiny MusicGen + the tiny frozen encoder of
    `conditioner`, a key of CONDITIONERS) -> A/B accuracies."""
    from ..data.example_video import CLASSES, write_video_dataset
    write_video_dataset(work / 'dataset', work / 'egs', list(CLASSES)[:classes], per_class, progress=False)
    args = train_args(work, CONDITIONERS[conditioner](work), updates, segment)
    start = time.time()
    proc = run_dora(args, work / 'xps', capture=True)
    if proc.returncode:
        raise RuntimeError(f"dora run failed:\n{proc.stderr[-4000:]}")
    train_s = time.time() - start
    from ..workflow import runs
    with runs.dora_dir_at(work / 'xps'):  # the XP the run just wrote
        xp = runs.get_xp(args)
        folder = str(xp.folder)
        solver = runs.get_solver_from_xp(xp, restore=True, load_best=False)
    acc = ab_accuracy(solver.model, solver.compression_model, clip_classes(work / 'egs' / 'train'),
                      clip_classes(work / 'egs' / 'test'), duration=segment, gen_steps=int(25 * segment))
    return {**acc, 'chance': 1 / classes, 'train_seconds': train_s, 'xp': folder}
