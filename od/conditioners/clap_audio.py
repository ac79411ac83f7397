"""`clap_audio`: a reference audio clip conditions MusicGen through LAION-CLAP audio embeddings.

Design (as `clip_frames`). AudioCraft's MusicDataset gives every segment a `self_wav`
WavCondition holding its audio file's path and `seek_time`, and classifier-free-guidance dropout
nulls it (path None, length 0). So this is a WaveformConditioner on `self_wav`: in training the
reference is the segment's own audio, read from its file at 48 kHz (the window may run past the
segment: CLAP wants 10 s); at inference the same WavCondition carries a reference audio file
(`attributes_for_audio`). No fork of the dataset, the conditioning provider or the solver.

    reference [start, start + duration) --10-s windows every `stride` s-->
      laion-clap audio tower (frozen, outside the module tree) --> [N, D_clap]   (cached per file)
      + learned window position embedding [N, D_clap] (optional)
      --output_proj--> [N, D_lm] --> cross-attention (fuser.cross: [self_wav])

Cache: the whole file's windows on a grid of `cache_hop` s (default: `stride`), one entry per
file in od.data.cache.EmbeddingCache; a window start snaps to the nearest grid point. Audio
that cannot be read gives the null condition for that sample (mask 0), counted per file and
reported once: never an exception in the training loop.
"""
from __future__ import annotations

import logging
import math
import typing as tp
from pathlib import Path

import torch

from ..data.cache import EmbeddingCache
from ..encoders.clap import get_clap, read_audio
from .media_carrier import media_condition
from .media_tokens import MediaTokenConditioner
from .registry import register_conditioner

logger = logging.getLogger(__name__)


@register_conditioner('clap_audio')
class CLAPAudioConditioner(MediaTokenConditioner):
    """CLAP tokens (one per window) of a reference audio clip.

    Args:
        output_dim: LM width. device: where CLAP runs. duration: training segment length (s).
        name: which CLAP (see od.encoders.clap; default music_audioset_epoch_15_esc_90.14.pt).
        window: window length (s, at most the model's 10 s). stride: hop between windows
            (default: `window`, no overlap). n_windows: tokens per condition (default: the
            windows of one training segment).
        pos_emb: learn a position embedding per window slot.
        cache_dir: where embeddings are cached (default: `.od_cache/` next to the audio).
        cache_hop: grid of cached window starts in s (default: `stride`).
        use_cache: False embeds each condition's windows on the fly (nothing written).
    """
    media_kinds = ('audio',)  # what od.inference.ODMusicGen may route to this conditioner
    media_noun = 'reference audio'  # read_audio raises ValueError naming the file

    def __init__(self, output_dim: int, device: str, duration: tp.Optional[float] = None,
                 name: tp.Optional[str] = None, window: float = 10., stride: tp.Optional[float] = None,
                 n_windows: tp.Optional[int] = None, pos_emb: bool = True, cache_dir: tp.Optional[str] = None,
                 cache_hop: tp.Optional[float] = None, use_cache: bool = True):
        encoder = get_clap(name, device)
        stride = float(stride or window)
        max_tokens = n_windows or 1 + max(0, math.floor((float(duration or window) - window) / stride + 1e-6))
        super().__init__(encoder.dim, output_dim, device, max_tokens, pos_emb)
        self.encoder = encoder  # a plain object holding the frozen model: not a submodule, not trained or saved
        self.window, self.stride = float(window), stride
        self.cache = EmbeddingCache(f"{encoder.tag}-w{self.window:g}", 1. / float(cache_hop or self.stride), cache_dir)
        self.use_cache = use_cache

    def starts(self, start: float, duration: float) -> tp.List[float]:
        """Window starts for the reference `[start, start + duration)` (at most `max_tokens`)."""
        count = 1 + max(0, math.floor((duration - self.window) / self.stride + 1e-6))
        return [start + k * self.stride for k in range(min(count, self.max_tokens))]

    def file_embeddings(self, path: Path, lookup: bool = True) -> torch.Tensor:
        """[N, D] embeddings of the windows starting every cache hop over the whole file
        (`lookup=False`: the cache was just missed)."""
        cached = self.cache.get(path) if lookup else None
        if cached is not None:
            return cached.float()
        wav = read_audio(path)
        hop = 1. / self.cache.fps
        seconds = wav.shape[-1] / self.encoder.sample_rate
        embeds = self.encoder.embed_at(wav, [k * hop for k in range(max(1, math.ceil(seconds / hop - 1e-6)))],
                                       self.window)
        self.cache.put(path, embeds)
        return embeds.half().float()  # exactly what a cache hit returns

    def reference_embeddings(self, path: Path, start: float, duration: float) -> torch.Tensor:
        """[N, D] CLAP tokens of the reference `[start, start + duration)` of `path` (from the cache:
        its fp16 rows)."""
        starts = self.starts(start, duration)
        if not self.use_cache:
            wav = read_audio(path, starts[0], starts[-1] - starts[0] + self.window)
            return self.encoder.embed_at(wav, [s - starts[0] for s in starts], self.window)
        embeds = self.cached(path)  # a hit: the memory-mapped fp16 entry; tokenize copies only these rows
        if embeds is None:
            embeds = self.file_embeddings(path, lookup=False)
        index = [min(len(embeds) - 1, round(s * self.cache.fps)) for s in starts]
        return embeds[index]

    def media_tokens(self, path, start: float, duration: float) -> torch.Tensor:
        return self.reference_embeddings(Path(path), start, duration)


def attributes_for_audio(path: tp.Optional[tp.Union[str, Path]], start: float = 0., duration: float = 10.,
                         sample_rate: int = 32000, attribute: str = 'self_wav',
                         descriptions: tp.Optional[tp.Dict[str, tp.Optional[str]]] = None):
    """ConditioningAttributes for generating from the reference `[start, start + duration)` of
    `path` (None: the null condition). `sample_rate` is the LM's; only the length matters."""
    from audiocraft.modules.conditioners import ConditioningAttributes
    cond = media_condition(None if path is None else str(path), start, duration, sample_rate)
    return ConditioningAttributes(text=dict(descriptions or {}), wav={attribute: cond})
