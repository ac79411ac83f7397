"""Does a condition carry information? Generate from it, then recover its class from the codes.

`class_centroids` + `classify` (nearest centroid on per-codebook code histograms) are shared by
every such check: video classes (`ab_accuracy`), learned concepts in od/solvers/textual_inversion.py.
The experiments that train models and then call these live in od/experiments/.

For clips whose class is known (the sidecar field `video_class` of the synthetic colour
dataset), the LM generates tokens conditioned on each clip's media (its video for CLIP, its
audio as the reference for CLAP); a nearest-centroid
classifier over per-codebook code histograms, with centroids from the *real* training audio
of each class, names the class of each generation. With the condition nulled, the same model
should sit near chance (od/experiments/conditioning_ab.py trains the model that is measured).
"""
from __future__ import annotations

import copy
import json
import typing as tp
from pathlib import Path

import torch


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


def media_attributes(path: str, start: float, duration: float, sample_rate: int):
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
    attributes = [media_attributes(path, 0., duration, sr) for path, _ in test]
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
