"""Per-video frame-embedding cache, written atomically and checked against the video file.

One entry per (video, encoder tag, frame rate): the embeddings of the whole video sampled at
`fps` (frame i at time (i + 0.5) / fps), so any training window reads its frames from it without
decoding video. By default entries live next to the dataset: `<video dir>/.od_cache/<key>/<stem>.pt`;
`root=` puts them under one folder instead (named by a hash of the video path). An entry whose
video changed (size or mtime) or whose file is unreadable counts as a miss and is rewritten.
"""
from __future__ import annotations

import hashlib
import logging
import os
import typing as tp
from pathlib import Path

import torch

from ..safe_load import torch_load

logger = logging.getLogger(__name__)


class EmbeddingCache:
    def __init__(self, tag: str, fps: float, root: tp.Optional[tp.Union[str, Path]] = None):
        # "-pts": entries from the PyAV reader (frames by timestamp, last partial slot kept); older ones are ignored
        self.key = f"{tag}-fps{fps:g}-pts".replace("/", "--")
        self.fps = float(fps)
        self.root = Path(root) if root else None
        self.hits = 0
        self.misses = 0
        self.write_failures = 0

    def path_for(self, video: tp.Union[str, Path]) -> Path:
        try:
            video = Path(video).resolve()
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError on Python 3.11): its reader will say so
            video = Path(os.path.abspath(video))
        if self.root is None:
            return video.parent / '.od_cache' / self.key / f"{video.stem}.pt"
        digest = hashlib.sha1(os.fsencode(video)).hexdigest()[:16]  # (names need not be UTF-8)
        return self.root / self.key / f"{video.stem}-{digest}.pt"

    @staticmethod
    def _stamp(video: Path) -> tp.Tuple[int, int]:
        stat = video.stat()
        return stat.st_size, stat.st_mtime_ns

    def get(self, video: tp.Union[str, Path]) -> tp.Optional[torch.Tensor]:
        """[N, D] embeddings of `video`, or None (miss, stale or unreadable entry)."""
        entry = self.path_for(video)
        if entry.exists():
            try:
                data = torch_load(entry, 'embedding cache entry')
                if tuple(data['stamp']) == self._stamp(Path(video)) and data['fps'] == self.fps:
                    self.hits += 1
                    return data['embeds']
            except Exception as exc:  # a truncated, foreign or pickled-code file (never run): recompute it
                logger.warning("Ignoring unreadable cache entry %s (%s)", entry, exc)
        self.misses += 1
        return None

    def put(self, video: tp.Union[str, Path], embeds: torch.Tensor) -> tp.Optional[Path]:
        """Store `embeds` [N, D] for `video`; a kill mid-write leaves no entry that looks whole.

        A cache that cannot be written (full disk, read-only folder) is reported once and
        skipped: the embeddings are still returned to training, which goes on uncached."""
        from .. import atomic
        entry = self.path_for(video)
        data = {'embeds': embeds.detach().to('cpu', torch.float16), 'fps': self.fps,
                'stamp': list(self._stamp(Path(video))), 'video': str(Path(video).resolve())}
        try:
            atomic.torch_save(data, entry)
        except (OSError, RuntimeError) as exc:  # torch.save wraps ENOSPC in a RuntimeError
            self.write_failures += 1
            if self.write_failures == 1:
                logger.warning("Cannot write the embedding cache at %s (%s): going on without caching; "
                               "free space or set cache_dir elsewhere to cache again.", entry.parent, exc)
            return None
        return entry
