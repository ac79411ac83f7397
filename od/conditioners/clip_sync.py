"""`clip_sync`: CLIP frames of the video placed on the LM's token steps, so the picture can decide
*when* the music moves (a cut, a hit), not only what it plays.

`clip_frames` gives the LM 30 frame tokens per segment through cross-attention, with a learned
position per slot: a cut cannot be placed within a frame period, and cross-attention has to
learn the time alignment itself. Here the same cached CLIP embeddings, sampled at `fps` (25 by
default: an event is placed within 40 ms), reach each token step as the frame shown at that
step's time, added to the LM's input (`fuser.time`, od/conditioners/time_aligned.py, which keeps
that alignment in streaming generation):

    frames at fps [N, D_clip] --output_proj--> [N, D_lm]        (+ change_proj(change [N, 1]))
      --frame of each token step s (time (s + 0.5) / frame_rate)--> [L, D_lm] --> input += it

`change` (on by default) adds the cheapest visual rhythm there is: how much each frame's CLIP
embedding moved from the previous one (1 - cosine), a spike at a cut, through its own learned
projection, so a model can tie an onset to a cut without first learning to compare
neighbouring steps. The video is found, read, cached and nulled exactly as for `clip_frames`.
"""
from __future__ import annotations

import math
import typing as tp

import torch
from torch import nn
from torch.nn import functional as F

from .clip_frames import CLIPFrameConditioner
from .media_carrier import windows
from .registry import register_conditioner
from .time_aligned import TimeAlignedConditioner


def step_rows(seconds: float, count: int, fps: float, frame_rate: float) -> tp.List[int]:
    """Token row of each LM step of a `seconds`-long window: step s shows the frame sampled in
    the 1/fps slot holding (s + 0.5) / frame_rate (token k is sampled at (k + 0.5) / fps)."""
    steps = max(0, int(math.floor(seconds * frame_rate + 1e-6)))
    return [min(int(math.floor((s + 0.5) / frame_rate * fps + 1e-9)), count - 1) for s in range(steps)]


@register_conditioner('clip_sync')
class CLIPSyncConditioner(TimeAlignedConditioner, CLIPFrameConditioner):
    """CLIP frames at `fps`, one per LM token step (fuse with `fuser.time`).

    Args: as `clip_frames` (name, pretrained, video_suffix, cache_dir, cache_fps, use_cache,
    image_tokens), and
        fps: frames per second read from the video (>= 10 to place an event within 100 ms).
        change: also give each step how far the picture moved since the previous frame.
    """

    def __init__(self, output_dim: int, device: str, duration: tp.Optional[float] = None,
                 fps: float = 25., change: bool = True, **kwargs):
        if fps is None or fps <= 0:
            raise ValueError("clip_sync needs fps > 0 (frames per second read from the video)")
        wrong = sorted(set(kwargs) & {'n_frames', 'pos_emb'})
        if wrong:   # the step's time is its place in the sequence: no frame count, no slot embedding
            raise ValueError(f"clip_sync reads `fps` frames per second, one per token step: {', '.join(wrong)} "
                             "belong to clip_frames (conditioner=clipemb2music)")
        super().__init__(output_dim, device, duration, n_frames=None, fps=fps, pos_emb=False, **kwargs)
        self.change_proj = nn.Linear(1, output_dim) if change else None

    def tokenize(self, x):
        out = super().tokenize(x)                                    # embeds [B, N, D], mask [B, N]
        rate = self.steps_per_second()
        counts = out['mask'].sum(1).tolist()
        rows = [step_rows(seconds, int(n), self.fps, rate) if n else []
                for (_, _, seconds), n in zip(windows(x), counts)]
        length = max([len(r) for r in rows] + [1])
        index = torch.full((len(rows), length), -1, dtype=torch.long)   # [B, L] token row of step s; -1: none
        for i, r in enumerate(rows):
            index[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        out['steps'] = index.to(self.device)
        return out

    def forward(self, inputs: tp.Dict[str, torch.Tensor]):
        embeds, mask, index = inputs['embeds'], inputs['mask'], inputs['steps']   # [B, N, D], [B, N], [B, L]
        embeds = embeds.to(self.output_proj.weight)
        tokens = self.output_proj(embeds)                                        # [B, N, D_lm]
        if self.change_proj is not None:
            moved = 1 - F.cosine_similarity(embeds[:, 1:], embeds[:, :-1], dim=-1)  # [B, N-1]
            moved = F.pad(moved * mask[:, 1:] * mask[:, :-1], (1, 0))              # frame 0: no previous one
            tokens = tokens + self.change_proj(moved.unsqueeze(-1))
        present = (index >= 0)                                                   # [B, L]
        rows = index.clamp(min=0).unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
        steps = torch.gather(tokens, 1, rows) * present.unsqueeze(-1)            # [B, L, D_lm]
        return steps, present.long()
