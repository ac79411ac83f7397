"""`clip_frames`: the frames of a video (or one image) condition MusicGen through CLIP.

Design. AudioCraft's MusicDataset gives every segment a `self_wav` WavCondition holding the
audio file's path and the segment's `seek_time` (even when training from AudioCraft's token
cache), and classifier-free-guidance dropout nulls it (path None, length 0). So this conditioner
is a WaveformConditioner on `self_wav`: it finds the video next to the audio file
(`<id>.mp4|.webm|.mkv|.mov|...` or an image beside `<id>.wav`), takes the frames of the *same* window, and needs no fork of the
dataset, the conditioning provider or the solver. At inference the same WavCondition carries
a video or image path and a start time.

    frames [T, H, W, 3] --CLIP image tower (frozen)--> [T, D_clip]      (cached per video)
      + learned temporal position embedding [T, D_clip] (optional)
      --output_proj--> [T, D_lm] --> cross-attention (fuser.cross: [self_wav])

A missing, audio-only or corrupt video gives the null condition for that sample (mask 0) and is
counted and reported once per file: never an exception in the training loop.
"""
from __future__ import annotations

import collections
import logging
import math
import typing as tp
from pathlib import Path

import torch

from ..data.cache import EmbeddingCache
from ..data.frames import IMAGE_EXTS, VIDEO_EXTS, FrameError, companion, read_frames, read_image, window_rows
from ..encoders.clip import DEFAULT_CLIP, load_image_encoder
from .media_tokens import MediaTokenConditioner
from .registry import register_conditioner

logger = logging.getLogger(__name__)


class MediaMix(tuple):
    """Several media files sharing one window: token slot j of T comes from file j * k // T.

    With two videos this is seed 003's transition test (first half of the frames from one
    clip, second half from the next). Carried in `WavCondition.path` like a single path.
    """


@register_conditioner('clip_frames')
class CLIPFrameConditioner(MediaTokenConditioner):
    """CLIP tokens of the video frames that go with an audio segment.

    Args:
        output_dim: LM width. device: where CLIP runs. duration: training segment length (s).
        name, pretrained: which CLIP (see od.encoders.clip); ViT-B-32 by default.
        n_frames: frames per window, evenly spread (seed 003: 30). fps: or a fixed rate instead.
        pos_emb: learn a temporal position embedding per frame slot.
        video_suffix: companion of `<id>.<audio ext>`; None (default): the first video or image
            `<id>.<ext>` the frame reader decodes (od.data.frames.companion).
        cache_dir: where embeddings are cached (default: `.od_cache/` next to the videos).
        cache_fps: rate of the cached embeddings (default: the sampling density of a window, so
            each sampling instant reads the cached frame whose 1/cache_fps slot contains it).
        use_cache: False decodes and embeds each window's frames on the fly (nothing written).
        image_tokens: an image gives 1 token (`single`) or n_frames copies (`repeat`).
    """
    media_kinds = ('video', 'image')  # what od.inference.ODMusicGen may route to this conditioner
    media_errors, media_noun = (FrameError,), 'frames'

    def __init__(self, output_dim: int, device: str, duration: tp.Optional[float] = None,
                 name: str = DEFAULT_CLIP, pretrained: tp.Optional[str] = None,
                 n_frames: tp.Optional[int] = 30, fps: tp.Optional[float] = None, pos_emb: bool = True,
                 video_suffix: tp.Optional[str] = None, cache_dir: tp.Optional[str] = None,
                 cache_fps: tp.Optional[float] = None, image_tokens: str = 'single', use_cache: bool = True):
        encoder = load_image_encoder(name, pretrained, device)
        segment = float(duration or 30.)
        max_tokens = int(n_frames) if fps is None else max(1, math.floor(segment * fps))
        super().__init__(encoder.dim, output_dim, device, max_tokens, pos_emb)
        self.encoder = encoder  # a plain object holding the frozen model: not a submodule, not trained or saved
        self.n_frames, self.fps = n_frames, fps
        self.video_suffix = video_suffix
        if image_tokens not in ('single', 'repeat'):
            raise ValueError("image_tokens must be 'single' or 'repeat'")
        self.image_tokens = image_tokens
        density = fps if fps is not None else self.max_tokens / segment
        self.cache = EmbeddingCache(encoder.tag, cache_fps or density, cache_dir)
        self.use_cache = use_cache
        self.short_videos: tp.Counter[str] = collections.Counter()  # media -> windows padded
        self._companions: tp.Dict[str, Path] = {}  # audio path -> its video/image

    # ---- where the pixels come from -------------------------------------------------------
    def media_for(self, path: tp.Union[str, Path]) -> Path:
        """The video/image for an audio path (or the path itself when it is one). A companion
        found is remembered (the search stats up to 22 names per call; training asks per sample)."""
        found = self._companions.get(str(path))
        if found is not None:
            return found
        path = Path(path)
        if path.suffix.lower() in VIDEO_EXTS + IMAGE_EXTS:
            return path
        if self.video_suffix:
            return path.with_suffix(self.video_suffix)
        found = companion(path)
        if found is None:
            return path.with_suffix('.mp4')  # a missing one is named as <id>.mp4 (looked for again next time)
        if path.is_absolute() and len(self._companions) < 1_000_000:
            self._companions[str(path)] = found
        return found

    def video_embeddings(self, video: Path, lookup: bool = True) -> torch.Tensor:
        """[N, D] embeddings of the whole video at the cache rate (computed once, then cached;
        `lookup=False`: the cache was just missed)."""
        return self.encoder.embed_video(video, self.cache.fps, self.cache if self.use_cache else None,
                                        self.device, lookup=lookup)

    def window_embeddings(self, media: Path, start: float, duration: float) -> torch.Tensor:
        """[T, D] CLIP tokens of the window `[start, start + duration)` of `media` (from the cache:
        its fp16 rows, a view when they are consecutive; do not write into them)."""
        if media.suffix.lower() in IMAGE_EXTS:
            token = self.encoder.encode(read_image(media), self.device).cpu()
            return token if self.image_tokens == 'single' else token.expand(self.max_tokens, -1)
        if not self.use_cache:  # decode and embed just this window's frames
            window = read_frames(media, start, duration, self.n_frames, self.fps)
            return self.encoder.encode(window.frames[:self.max_tokens], self.device).cpu()
        embeds = self.cached(media)  # a hit: the memory-mapped fp16 entry; tokenize copies only the window's rows
        if embeds is None:
            embeds = self.video_embeddings(media, lookup=False)
        rows, padded = window_rows(start, duration, self.n_frames, self.fps, self.cache.fps, len(embeds),
                                   self.max_tokens)
        if padded:
            if not self.short_videos[str(media)]:
                from ..data.frames import video_duration
                logger.warning("%s: video is %.2f s long, window ends at %.2f s: repeating its last "
                               "frame.", media, video_duration(media), start + duration)
            self.short_videos[str(media)] += 1
        if rows[-1] - rows[0] == len(rows) - 1 and len(set(rows)) == len(rows):  # consecutive: a view
            return embeds[rows[0]:rows[-1] + 1]
        return embeds[torch.tensor(rows)]

    def mixed_embeddings(self, media: tp.Union[Path, MediaMix], start: float, duration: float) -> torch.Tensor:
        """`window_embeddings` of one file, or of a MediaMix (slot j from part j * k // T)."""
        if not isinstance(media, MediaMix):
            return self.window_embeddings(media, start, duration)
        parts = [self.window_embeddings(self.media_for(m), start, duration).float() for m in media]
        total = max(len(p) for p in parts)
        owners = [j * len(parts) // total for j in range(total)]            # slot -> part
        return torch.stack([parts[k][min(j, len(parts[k]) - 1)] for j, k in enumerate(owners)])

    def embed_missing(self, paths: tp.Iterable[tp.Any]) -> int:
        """Embed the not yet cached videos among `paths` (a batch's) together, in shared encoder
        batches (`ImageEncoder.embed_videos`), into the cache; returns how many. With fewer than
        two, or when one of them does not decode, nothing is done here: the per-sample path
        embeds (and reports) each one. At inference only (eval mode): in training the cache is
        filled by od.prep, and the lookups would cost every step."""
        if self.training or not self.use_cache or self.cache.write_failures:
            return 0
        missing: tp.Dict[str, Path] = {}
        for path in paths:
            if path is None:
                continue
            media = self._media(path)
            for part in (media if isinstance(media, MediaMix) else [media]):
                part = self.media_for(part)
                if (str(part) not in missing and part.suffix.lower() in VIDEO_EXTS and part.is_file()
                        and self.cache.get(part) is None):
                    missing[str(part)] = part
        if len(missing) < 2:
            return 0
        try:
            self.encoder.embed_videos(list(missing.values()), self.cache.fps, self.cache, self.device)
        except self.media_errors:
            return 0
        return len(missing)

    def tokenize(self, x):
        self.embed_missing(p for p, n in zip(x.path, x.length.tolist()) if n > 0)  # (not iterated in training)
        return super().tokenize(x)

    # ---- MediaTokenConditioner API -------------------------------------------------------
    def _media(self, path) -> tp.Union[Path, MediaMix]:
        return path if isinstance(path, MediaMix) else self.media_for(path)

    def media_key(self, path) -> str:
        return str(self._media(path))

    def media_tokens(self, path, start: float, duration: float) -> torch.Tensor:
        return self.mixed_embeddings(self._media(path), start, duration)
