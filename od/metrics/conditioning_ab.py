"""Does a condition carry information? Generate from it, then recover its class.

`class_centroids` + `classify` (nearest centroid on per-codebook code histograms) are shared by
every such check: video classes here, learned concepts in od/solvers/textual_inversion.py.

For clips whose class is known (the sidecar field `video_class` of the synthetic colour
dataset), the LM generates tokens conditioned on each clip's media (its video for CLIP, its
audio as the reference for CLAP); a nearest-centroid
classifier over per-codebook code histograms, with centroids from the *real* training audio
of each class, names the class of each generation. With the condition nulled, the same model
should sit near chance. Used by tests/test_clip_frames.py, tests/test_clap.py and benchmarks/conditioning_ab.py.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

import torch

from ..environment import ROOT


def clip_classes(manifest_dir: tp.Union[str, Path], field: str = 'video_class') -> tp.List[tp.Tuple[str, str]]:
    """(audio path, class) for every manifest entry whose sidecar has `field`."""
    from audiocraft.data.audio_dataset import load_audio_meta
    out = []
    for path in (m.path for m in load_audio_meta(Path(manifest_dir) / 'data.jsonl', resolve=False)):
        sidecar = Path(path).with_suffix('.json')
        if sidecar.exists() and field in (meta := json.loads(sidecar.read_text())):
            out.append((path, meta[field]))
    return out


def code_histograms(codes: torch.Tensor, card: int) -> torch.Tensor:
    """[B, K, T] codes -> [B, K * card] per-codebook normalised histograms."""
    hist = torch.zeros(codes.shape[0], codes.shape[1], card)
    hist.scatter_add_(2, codes.clamp(0, card - 1).cpu(), torch.ones(codes.shape, dtype=torch.float))
    return (hist / hist.sum(-1, keepdim=True).clamp(min=1)).flatten(1)


def class_centroids(codes_by_class: tp.Mapping[str, tp.Sequence[torch.Tensor]], card: int) -> tp.Dict[str, torch.Tensor]:
    """class -> mean code histogram [K * card] of its real token sequences (each [K, T])."""
    return {label: torch.stack([code_histograms(c[None], card)[0] for c in codes]).mean(0)
            for label, codes in codes_by_class.items()}


def classify(codes: torch.Tensor, centroids: tp.Mapping[str, torch.Tensor], card: int) -> tp.List[str]:
    """[B, K, T] generated codes -> the class of the nearest centroid for each item."""
    return [min(centroids, key=lambda c: float((h - centroids[c]).norm())) for h in code_histograms(codes, card)]


def _attributes(path: str, start: float, duration: float, sample_rate: int):
    """Attributes reading `path`'s window: the media of any `self_wav` conditioner."""
    from ..conditioners.clap_audio import attributes_for_audio
    return attributes_for_audio(path, start, duration, sample_rate)


@torch.no_grad()
def ab_accuracy(lm, compression_model, train: tp.Sequence[tp.Tuple[str, str]],
                test: tp.Sequence[tp.Tuple[str, str]], duration: float, gen_steps: int = 50,
                cfg_coef: float = 3.0, top_k: int = 50, repeats: int = 4,
                seed: int = 0) -> tp.Dict[str, float]:
    """Accuracy of recovering each test clip's class from generations, conditioned vs nulled.

    Each test clip is generated from `repeats` times (different samples), so a model that
    ignores the condition scores 0.5 +- a few points on two balanced classes.
    """
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout

    lm.eval()
    sr, card = compression_model.sample_rate, compression_model.cardinality
    device = next(lm.parameters()).device
    per_class: tp.Dict[str, tp.List[torch.Tensor]] = {}
    for path, label in train:
        wav, file_sr = audio_read(path, duration=duration)
        wav = convert_audio(wav, file_sr, sr, compression_model.channels)[None].to(device)
        codes, _ = compression_model.encode(wav)
        per_class.setdefault(label, []).append(codes[0])
    centroids = class_centroids(per_class, card)
    test = [clip for clip in test for _ in range(repeats)]
    labels = [label for _, label in test]
    attributes = [_attributes(path, 0., duration, sr) for path, _ in test]
    accuracy = {}
    for mode in ('conditioned', 'nulled'):
        attrs = copy.deepcopy(attributes)
        if mode == 'nulled':
            attrs = ClassifierFreeGuidanceDropout(p=1.0)(attrs)
        torch.manual_seed(seed)
        codes = lm.generate(None, attrs, max_gen_len=gen_steps, use_sampling=True, top_k=top_k,
                            cfg_coef=cfg_coef if mode == 'conditioned' else 1.0)
        guesses = classify(codes, centroids, card)
        accuracy[mode] = sum(g == t for g, t in zip(guesses, labels)) / len(labels)
    return accuracy


def _clip_setup(work: Path) -> tp.List[str]:
    from ..models.tiny import write_tiny_clip
    clip = write_tiny_clip(work / 'tiny-clip')
    return ['conditioner=clipemb2music', f'conditioners.self_wav.clip_frames.name={clip}',
            'conditioners.self_wav.clip_frames.n_frames=4']


def _clap_setup(work: Path) -> tp.List[str]:
    from ..models.tiny import write_tiny_clap
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
    from ..environment import setup

    setup()  # offline before AudioCraft (and laion_clap through it) is imported
    write_video_dataset(work / 'dataset', work / 'egs', list(CLASSES)[:classes], per_class, progress=False)
    args = train_args(work, CONDITIONERS[conditioner](work), updates, segment)
    env = dict(os.environ, AUDIOCRAFT_DORA_DIR=str(work / 'xps'), HF_HUB_OFFLINE='1')
    env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env.get('PATH', '')
    start = time.time()
    proc = subprocess.run([sys.executable, '-m', 'dora', 'run', *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"dora run failed:\n{proc.stderr[-4000:]}")
    train_s = time.time() - start
    from .. import train
    previous, train.main.dora.dir = train.main.dora.dir, work / 'xps'  # the XP the run just wrote
    try:
        xp = train.main.get_xp(args)
        folder = str(xp.folder)  # resolved against work/xps, while dora.dir points there
        solver = train.get_solver_from_xp(xp, restore=True, load_best=False)
    finally:
        train.main.dora.dir = previous
    acc = ab_accuracy(solver.model, solver.compression_model, clip_classes(work / 'egs' / 'train'),
                      clip_classes(work / 'egs' / 'test'), duration=segment, gen_steps=int(25 * segment))
    return {**acc, 'chance': 1 / classes, 'train_seconds': train_s, 'xp': folder}
