"""What od's media conditioners (clip_frames, clap_audio) share: tokens read from a file.

Both are WaveformConditioners on AudioCraft's `self_wav`, the media carrier of media_carrier.py
(media + window, nulled by classifier-free-guidance dropout). A subclass says how to turn one window of one file into
tokens (`media_tokens`); this base batches them with a mask, turns an unreadable file into the
null condition for that sample (counted per file, reported once), and projects the tokens:

    tokens [B, N, D_enc] + learned position embedding (optional) --output_proj--> [B, N, D_lm]
"""
from __future__ import annotations

import collections
import logging
import typing as tp

import torch
from audiocraft.modules import conditioners as ac
from torch import nn

from .media import MediaConditioner
from .media_carrier import windows

logger = logging.getLogger(__name__)


class MediaTokenConditioner(MediaConditioner, ac.WaveformConditioner):
    media_errors: tp.Tuple[tp.Type[Exception], ...] = (ValueError,)  # what nulls a sample
    media_noun = 'media'  # for the warning: "No <noun> for <path>, using the null condition"
    reads_waveform = False  # only path/seek_time/length of the WavCondition: its audio may be dropped

    def __init__(self, dim: int, output_dim: int, device: str, max_tokens: int, pos_emb: bool):
        super().__init__(dim, output_dim, device)
        self.max_tokens = int(max_tokens)
        self.pos_emb = nn.Parameter(torch.randn(self.max_tokens, dim) * 0.02) if pos_emb else None
        self.failures: tp.Counter[str] = collections.Counter()  # media -> conditions nulled

    def media_tokens(self, path: tp.Any, start: float, duration: float) -> torch.Tensor:
        """[N <= max_tokens, D] tokens of `[start, start + duration)` of `path`, in any float dtype
        (a cache entry's fp16 rows are returned as they are: `tokenize` converts them while
        copying them into its batch); raises one of `media_errors` when the file cannot be read."""
        raise NotImplementedError

    def media_key(self, path: tp.Any) -> str:
        """The file failures are counted under."""
        return str(path)

    def cached(self, media: tp.Any) -> tp.Optional[torch.Tensor]:
        """`self.cache`'s memory-mapped entry for `media`, or None. In training an entry found
        valid less than a second ago is not stat-ed again (two syscalls per sample per step); a
        rewrite by od.prep is seen a second later. At inference every lookup checks."""
        return self.cache.get(media, max_age=1. if self.training else 0.)

    def tokenize(self, x: ac.WavCondition) -> tp.Dict[str, torch.Tensor]:
        batch = len(x.path)
        embeds = torch.zeros(batch, self.max_tokens, self.dim)                  # [B, N, D]
        counts = [0] * batch                                                    # tokens of sample i
        for i, (path, start, seconds) in enumerate(windows(x)):
            if path is None or seconds == 0:
                continue  # null condition (classifier-free guidance, or no media)
            try:
                tokens = self.media_tokens(path, start, seconds)
            except self.media_errors as exc:
                key = self.media_key(path)
                if not self.failures[key]:
                    logger.warning("No %s for %s, using the null condition: %s", self.media_noun, path, exc)
                self.failures[key] += 1
                continue
            embeds[i, :len(tokens)] = tokens  # (converts a cache entry's fp16 rows)
            counts[i] = len(tokens)
        mask = (torch.arange(self.max_tokens) < torch.tensor(counts)[:, None]).long()  # [B, N]
        return {'embeds': embeds.to(self.device), 'mask': mask.to(self.device)}

    def forward(self, inputs: tp.Dict[str, torch.Tensor]) -> ac.ConditionType:
        embeds, mask = inputs['embeds'], inputs['mask']                    # [B, N, D], [B, N]
        if self.pos_emb is not None:
            embeds = embeds + self.pos_emb[:embeds.shape[1]]
        embeds = self.output_proj(embeds.to(self.output_proj.weight))     # [B, N, D_lm]
        return embeds * mask.unsqueeze(-1), mask
