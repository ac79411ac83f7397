"""Embedding cache for media files (video frames and audio windows), written atomically and
checked against the media file.

One entry per (media file, encoder tag, rate): the embeddings of the whole file sampled at `fps`
rows per second (row i at time (i + 0.5) / fps): CLIP embeddings of a video's frames
(clip_frames) or CLAP embeddings of an audio file's windows (clap_audio, one row per hop). Any
training window reads its rows from it without decoding. By default entries live next to the
dataset: `<media dir>/.od_cache/<key>/<stem>.pt`; `root=` puts them under one folder instead
(named by a hash of the media path). An entry whose media file changed (size or mtime) or whose
file is unreadable counts as a miss and is rewritten.

Reads are for the training step: an entry is loaded once per process, memory-mapped
(`torch.load(mmap=True)`: its pages are the OS's file cache, shared and evictable, not this
process's heap), and each later `get` only checks the video's and the entry's `stat` (in
training at most once a second per entry: `max_age`) and returns the mapped fp16 tensor, so a
step slices the rows of its window instead of unpickling and converting the whole entry per
sample (`benchmarks/clip_cost.py`). A rewritten or truncated entry
file has a new size/mtime/inode: its old mapping is dropped without being read.
"""
from __future__ import annotations

import collections
import hashlib
import logging
import os
import time
import typing as tp
from pathlib import Path

import torch

from ..core.safe_load import torch_load

logger = logging.getLogger(__name__)


class EmbeddingCache:
    def __init__(self, tag: str, fps: float, root: tp.Optional[tp.Union[str, Path]] = None,
                 max_mapped: int = 4096):
        # "-pts": entries from the PyAV reader (frames by timestamp, last partial slot kept); older ones are ignored
        self.key = f"{tag}-fps{fps:g}-pts".replace("/", "--")
        self.fps = float(fps)
        self.root = Path(root) if root else None
        self.hits = 0
        self.misses = 0
        self.write_failures = 0
        self.max_mapped = int(max_mapped)  # entries kept mapped (least recently used dropped first)
        # entry -> ((inode, size, mtime) of the entry, media stamp, embeds [N, D] fp16 memory-mapped,
        #           time.monotonic() of the last check of both stamps)
        self._mapped: tp.OrderedDict[Path, tp.Tuple[tp.Tuple[int, int, int], tp.Tuple[int, int], torch.Tensor,
                                                    float]] = collections.OrderedDict()
        self._entries: tp.Dict[str, Path] = {}  # media as given -> its entry (resolving a path costs syscalls)

    def path_for(self, media: tp.Union[str, Path]) -> Path:
        known = self._entries.get(str(media))
        if known is not None:
            return known
        entry = self._path_for(media)
        if os.path.isabs(media) and len(self._entries) < 1_000_000:  # a relative one depends on the cwd
            self._entries[str(media)] = entry
        return entry

    def _path_for(self, media: tp.Union[str, Path]) -> Path:
        try:
            media = Path(media).resolve()
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError on Python 3.11): its reader will say so
            media = Path(os.path.abspath(media))
        if self.root is None:
            return media.parent / '.od_cache' / self.key / f"{media.stem}.pt"
        digest = hashlib.sha1(os.fsencode(media)).hexdigest()[:16]  # (names need not be UTF-8)
        return self.root / self.key / f"{media.stem}-{digest}.pt"

    @staticmethod
    def _stamp(media: Path) -> tp.Tuple[int, int]:
        stat = media.stat()
        return stat.st_size, stat.st_mtime_ns

    def get(self, media: tp.Union[str, Path], max_age: float = 0.) -> tp.Optional[torch.Tensor]:
        """[N, D] fp16 embeddings of `media` (memory-mapped: read them, do not write into them), or
        None (miss, stale or unreadable entry). `max_age` > 0: a mapped entry whose stamps were
        checked less than `max_age` seconds ago is returned without checking them again."""
        entry = self.path_for(media)
        mapped = self._mapped.get(entry)
        now = time.monotonic()
        if mapped is not None and now - mapped[3] < max_age:
            self._mapped.move_to_end(entry)
            self.hits += 1
            return mapped[2]
        try:
            st = os.stat(entry)
            stamp = self._stamp(Path(media))
        except OSError:
            self._mapped.pop(entry, None)
            self.misses += 1
            return None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        if mapped is not None and mapped[0] == signature and mapped[1] == stamp:
            self._mapped[entry] = (*mapped[:3], now)
            self._mapped.move_to_end(entry)
            self.hits += 1
            return mapped[2]
        self._mapped.pop(entry, None)  # stale or rewritten: dropped without reading it
        try:
            data = torch_load(entry, 'embedding cache entry', mmap=True)
            if tuple(data['stamp']) == stamp and data['fps'] == self.fps:
                self.hits += 1
                self._mapped[entry] = (signature, stamp, data['embeds'], now)
                while len(self._mapped) > self.max_mapped:
                    self._mapped.popitem(last=False)
                return data['embeds']
        except Exception as exc:  # a truncated, foreign or pickled-code file (never run): recompute it
            logger.warning("Ignoring unreadable cache entry %s (%s)", entry, exc)
        self.misses += 1
        return None

    def put(self, media: tp.Union[str, Path], embeds: torch.Tensor) -> tp.Optional[Path]:
        """Store `embeds` [N, D] for `media`; a kill mid-write leaves no entry that looks whole.

        A cache that cannot be written (full disk, read-only folder) is reported once and
        skipped: the embeddings are still returned to training, which goes on uncached."""
        from ..core import atomic
        entry = self.path_for(media)
        self._mapped.pop(entry, None)
        # the 'video' key is kept for any media file, so entries written before stay valid
        data = {'embeds': embeds.detach().to('cpu', torch.float16), 'fps': self.fps,
                'stamp': list(self._stamp(Path(media))), 'video': str(Path(media).resolve())}
        try:
            atomic.torch_save(data, entry)
        except (OSError, RuntimeError) as exc:  # torch.save wraps ENOSPC in a RuntimeError
            self.write_failures += 1
            if self.write_failures == 1:
                logger.warning("Cannot write the embedding cache at %s (%s): going on without caching; "
                               "free space or set cache_dir elsewhere to cache again.", entry.parent, exc)
            return None
        return entry
