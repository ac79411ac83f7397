"""Training from AudioCraft's codec-token cache: loadable without unpickling objects, for every epoch.

AudioCraft's MusicGen solver can train from EnCodec tokens computed ahead (`cache.path=<folder>`;
`audiocraft.utils.cache.CachedBatchWriter` / `CachedBatchLoader`: `<folder>/<epoch>/<update>.zip`,
one entry per sample), so that no training step encodes audio — which is most of a step at the
debug scale. As published that cache does not work in od: each entry is a pickled `MusicInfo`,
which od's weights-only loading refuses (a crafted pickle would run code); its loader asserts
on any entry that is not a tensor (so on every MusicInfo); it starts no thread with
`num_workers=0`; and a run may only train as many epochs as were written. od keeps AudioCraft's
layout, classes and step, and changes what an entry is: plain data (the tokens [K, T] as int16 and
the segment's metadata as dicts), read with `torch.load(weights_only=True)` and rebuilt into a
MusicInfo; epochs past those written reuse them in turn. AudioCraft's step rebuilds `self_wav`
from each entry's path and seek time, so od's media conditioners (clip_frames, clap_audio) find
the same window as when training from audio.

    python -m od.prep --tokens solver=... dset=audio/<name> cache.path=<folder>   # fill once (fill())
    dora run solver=... dset=audio/<name> cache.path=<folder>                     # train from it
"""
from __future__ import annotations

import dataclasses
import io
import logging
import pickle
import typing as tp
import zipfile
from pathlib import Path

import torch
from audiocraft.data.audio_dataset import AudioMeta
from audiocraft.data.music_dataset import MusicInfo
from audiocraft.utils.cache import CachedBatchLoader, CachedBatchWriter

logger = logging.getLogger(__name__)

_NOT_STORED = ('meta', 'self_wav', 'joint_embed', 'audio_tokens')  # rebuilt, or set by the step
_PLAIN = (str, int, float, bool, type(None))


def _plain_value(name: str, value: tp.Any) -> tp.Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    raise TypeError(f"token cache: segment field {name!r} holds a {type(value).__name__}, not plain data")


def to_entry(info: MusicInfo) -> dict:
    """One sample of the cache: its codec tokens [K, T] int16 and its metadata, plain data only."""
    if info.audio_tokens is None:
        raise ValueError("token cache: a segment without audio_tokens cannot be cached")
    if info.joint_embed:
        raise ValueError("token cache: joint_embed conditions (AudioCraft's CLAP) are not supported")
    fields = {f.name: _plain_value(f.name, getattr(info, f.name)) for f in dataclasses.fields(info)
              if f.name not in _NOT_STORED}
    meta = {k: _plain_value(f'meta.{k}', v) for k, v in info.meta.to_dict().items()}
    return {'tokens': info.audio_tokens.to('cpu', torch.int16), 'meta': meta, 'info': fields}


def from_entry(entry: dict) -> MusicInfo:
    """The MusicInfo of a cache entry, with `audio_tokens` set (AudioCraft's step reads it)."""
    info = MusicInfo(meta=AudioMeta.from_dict(entry['meta']), **entry['info'])
    info.audio_tokens = entry['tokens']
    return info


class TokenCacheWriter(CachedBatchWriter):
    """AudioCraft's writer (layout, write-and-rename, DDP gathering) with plain-data entries."""

    def save(self, *content):
        infos, = content  # AudioCraft's solver saves one thing per batch: its infos
        super().save([to_entry(info) for info in infos])


class TokenCacheLoader(CachedBatchLoader):
    """AudioCraft's loader (threads reading the next zips ahead) over plain-data entries;
    epoch e of the run reads cached epoch ((e - 1) mod n) + 1 of the n written."""

    def __init__(self, cache_folder: Path, batch_size: int, num_workers: int = 10, min_length: int = 1):
        super().__init__(Path(cache_folder), batch_size, max(1, int(num_workers)), min_length)

    def cached_epochs(self) -> tp.List[int]:
        folder = Path(self.cache_folder)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir()
                      if p.is_dir() and p.name.isdigit() and any(p.glob('*.zip')))

    def start_epoch(self, epoch: int):
        epochs = self.cached_epochs()
        if not epochs:
            raise FileNotFoundError(
                f"No codec tokens in the token cache {self.cache_folder} (cache.path). Fill it once with "
                f"`python -m od.prep --tokens <the run's overrides> cache.path={self.cache_folder}`.")
        cached = epochs[(epoch - 1) % len(epochs)]
        if epoch > len(epochs) and not getattr(self, '_told_reuse', False):
            self._told_reuse = True
            logger.info("Token cache: %d epoch(s) cached; from epoch %d on they are reused in turn.",
                        len(epochs), epoch)
        super().start_epoch(cached)
        have = len(self)
        if have < self.min_length:
            raise ValueError(
                f"The token cache {self.cache_folder} holds {have} batches for epoch {cached}, the run needs "
                f"{self.min_length} (optim.updates_per_epoch): fill it again with `python -m od.prep --tokens` "
                "and the run's overrides.")

    def _load_one(self, index: int):
        path = self._zip_path(index)
        if not path.exists():
            if index < self.min_length:
                raise RuntimeError(f"Token cache batch {path} is missing (the run needs {self.min_length} per epoch)")
            return None
        import flashy
        world, rank = flashy.distrib.world_size(), flashy.distrib.rank()
        with zipfile.ZipFile(path, 'r') as zf:
            names = sorted(zf.namelist(), key=int)
            if len(names) < self.batch_size * world:
                raise ValueError(f"{path} holds {len(names)} samples, the run needs {self.batch_size * world} per "
                                 "batch (dataset.batch_size): fill the cache at this batch size.")
            infos = []
            for name in names[rank * self.batch_size:(rank + 1) * self.batch_size]:
                try:
                    entry, = torch.load(io.BytesIO(zf.read(name)), map_location='cpu', weights_only=True)
                except pickle.UnpicklingError as exc:
                    from ..core.safe_load import UnsafeFileError
                    raise UnsafeFileError(
                        f"{path}:{name} is not an od token-cache entry (it holds pickled objects: {str(exc)[:120]}); "
                        "nothing of it ran. A cache written by AudioCraft itself pickles MusicInfo objects: "
                        "fill it again with `python -m od.prep --tokens`.") from None
                infos.append(from_entry(entry))
        return [infos]


def install(solver) -> None:
    """Put od's writer/loader where AudioCraft's MusicGen solver built its own (cache.path set)."""
    cfg = solver.cfg
    if getattr(solver, '_cached_batch_writer', None) is not None:
        solver._cached_batch_writer = TokenCacheWriter(Path(cfg.cache.path))
    if getattr(solver, '_cached_batch_loader', None) is not None:
        loader = TokenCacheLoader(Path(cfg.cache.path), cfg.dataset.batch_size, cfg.dataset.num_workers,
                                  min_length=cfg.optim.updates_per_epoch or 1)
        solver._cached_batch_loader = loader
        solver.dataloaders['train'] = loader


def fill(solver, epochs: int = 1, progress: bool = True) -> tp.Dict[str, int]:
    """Write `epochs` epochs of `optim.updates_per_epoch` training batches of codec tokens to the
    solver's `cache.path`: the segments the dataset draws for those epochs, encoded by the
    solver's compression model. Returns counts."""
    from audiocraft.solvers.musicgen import get_dataset_from_loader
    from tqdm import tqdm
    if not solver.cfg.cache.path:
        raise ValueError("give cache.path=<folder> (where the codec tokens go, and where the run reads them)")
    loader = solver.dataloaders.get('original_train', solver.dataloaders['train'])
    dataset = get_dataset_from_loader(loader)
    updates = int(solver.cfg.optim.updates_per_epoch or len(loader))
    writer = TokenCacheWriter(Path(solver.cfg.cache.path))
    solver.compression_model.eval()
    samples = 0
    for epoch in range(1, epochs + 1):
        writer.start_epoch(epoch)
        dataset.current_epoch = epoch
        batches = zip(range(updates), loader)
        for _, (audio, infos) in tqdm(batches, total=updates, desc=f'codec tokens, epoch {epoch}/{epochs}',
                                      unit='batch', disable=not progress):
            with torch.no_grad():
                tokens, scale = solver.compression_model.encode(audio.to(solver.device))
            assert scale is None, "Scaled compression models are not supported with the LM."
            for info, one in zip(infos, tokens):
                info.self_wav = None
                info.audio_tokens = one.short().cpu()
            writer.save(infos)
            samples += len(infos)
    return {'epochs': epochs, 'batches': epochs * updates, 'samples': samples}
