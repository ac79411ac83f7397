"""Where the codes place an event: a per-frame event detector on codec tokens, fitted on real
audio whose event times are known.

Onsets are read from decoded audio, so they can only show what the codec's decoder keeps. A
codec that smears transients hides whether the LM put an event at the right step: AudioCraft's
random debug EnCodec (the CPU examples' codec) decodes the cut videos' own audio of
od.data.example_sync into music whose onsets follow the cuts barely more than chance
(benchmarks/sync_ab.py measures it: `codec_ceiling`). The tokens still tell: the codec's
encoder is deterministic, so an event gives codes of its own at its frame. Like the colour A/B
(od.metrics.code_classes), this asks the codes, with a classifier fitted on the codes of real
audio:

    codes [K, T] --codec's quantizer--> latents [D, T] --frames t-1, t, t+1, t - (t-1)--> [T, 4 D]
      --logistic regression--> P(event at t)

fitted on training audio's codes with the frames that hold an event (its video's cuts) as
positives; events are the frames above the threshold that best finds the training events (F1
within the tolerance), strongest first, at least MIN_GAP apart. A generation's events are then scored like onsets
(od.metrics.rhythm.alignment: the share of cuts with an event within +-100 ms).
"""
from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np
import torch

from .rhythm import TOLERANCE, hit_rate

MIN_GAP = 0.25   # s between two detected events (od.data.example_sync cuts at least 0.45 s apart)
L2 = 1e-2


def latents(compression_model, codes: torch.Tensor) -> torch.Tensor:
    """[K, T] codes -> [D, T] the codec's quantized latents (what its decoder reads): continuous,
    so a linear detector generalises where one-hot codes (K x 2048 columns) would not."""
    with torch.no_grad():
        return compression_model.quantizer.decode(codes[None].to(torch.long))[0].float().cpu()


def frame_features(z: torch.Tensor) -> torch.Tensor:
    """[D, T] latents -> [T, 4 D]: frames t-1, t, t+1 and the step t - (t-1) (zeros past the ends)."""
    x = z.T                                                                       # [T, D]
    zero = torch.zeros(1, x.shape[1])
    before, after = torch.cat([zero, x[:-1]]), torch.cat([x[1:], zero])
    return torch.cat([before, x, after, x - before], dim=1)


def event_frames(times: np.ndarray, frames: int, frame_rate: float) -> torch.Tensor:
    """[T] 1 at the frame holding each event time."""
    label = torch.zeros(frames)
    idx = np.floor(np.asarray(times, float) * frame_rate + 1e-9).astype(int)
    label[idx[(idx >= 0) & (idx < frames)]] = 1.
    return label


@dataclasses.dataclass
class EventDetector:
    weight: torch.Tensor        # [F]
    bias: float
    mean: torch.Tensor          # [F] feature standardisation of the training frames
    std: torch.Tensor
    threshold: float
    frame_rate: float

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """[T] P(event) per frame of [D, T] latents."""
        return torch.sigmoid(((frame_features(z) - self.mean) / self.std) @ self.weight + self.bias)

    def events(self, z: torch.Tensor, min_gap: float = MIN_GAP) -> np.ndarray:
        """Event times (s, frame starts) in [D, T] latents: the frames above the threshold,
        strongest first, none within `min_gap` of a stronger one."""
        return self.peaks(self.scores(z).numpy(), min_gap)

    def peaks(self, s: np.ndarray, min_gap: float = MIN_GAP) -> np.ndarray:
        """`events` from the frames' scores [T] (`scores`)."""
        gap = max(1, int(round(min_gap * self.frame_rate)))
        kept: tp.List[int] = []
        for f in np.argsort(-s):
            if s[f] < self.threshold:
                break
            if all(abs(f - g) >= gap for g in kept):
                kept.append(int(f))
        return np.sort(np.asarray(kept, float)) / self.frame_rate


def fit_detector(codes: tp.Sequence[torch.Tensor], events: tp.Sequence[np.ndarray],
                 frame_rate: float, steps: int = 300, tolerance: float = TOLERANCE, seed: int = 0) -> EventDetector:
    """A logistic-regression event detector from real audio's latents ([D, T] each, `latents`)
    and the event times (s) of each; positives weighted up to balance the few event frames."""
    torch.manual_seed(seed)
    x = torch.cat([frame_features(c) for c in codes])                             # [N, F]
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    x = (x - mean) / std
    y = torch.cat([event_frames(e, c.shape[1], frame_rate) for c, e in zip(codes, events)])
    if y.sum() == 0:
        raise ValueError("no event falls inside the codes: nothing to fit the detector on")
    weight, bias = torch.zeros(x.shape[1], requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=0.05)
    pos_weight = (len(y) - y.sum()) / y.sum()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weight + bias, y, pos_weight=pos_weight)
        (loss + L2 * weight.square().sum()).backward()
        opt.step()
    detector = EventDetector(weight.detach(), float(bias.detach()), mean, std, 0.5, frame_rate)
    best = (-1., 0.5)
    scores = [detector.scores(c).numpy() for c in codes]                          # once: the threshold only picks
    for threshold in np.linspace(0.05, 0.95, 19):                                 # the threshold that finds them best
        detector.threshold = float(threshold)
        found = [detector.peaks(s) for s in scores]
        recall = np.nanmean([hit_rate(e, f, tolerance) for e, f in zip(events, found) if len(e)])
        precision = np.nanmean([hit_rate(f, e, tolerance) for e, f in zip(events, found) if len(f)] or [0.])
        f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.
        best = max(best, (f1, float(threshold)))
    detector.threshold = best[1]
    return detector
