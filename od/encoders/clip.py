"""CLIP image towers (open-clip-torch), loaded offline, and frame preprocessing.

`name` says where the model comes from:
  - `hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K` — a hub repo in open_clip's format, looked up
    in `<reference_dir>/<repo>` then the Hugging Face cache (never downloaded);
  - a folder, or `//reference/<folder>`, holding `open_clip_config.json` + weights (the format
    `od.inference.tiny.write_tiny_clip` writes for tests);
  - an open_clip architecture such as `ViT-B-32` / `ViT-L-14` with `pretrained=<weights file>`.
Only the image tower is kept, frozen, in eval mode.
"""
from __future__ import annotations

import dataclasses
import logging
import typing as tp
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.environment import MissingWeightsError, hf_snapshot, resolve_reference

DEFAULT_CLIP = 'hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K'
CLIP_CONFIG = 'open_clip_config.json'
CLIP_WEIGHTS = ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin')


@dataclasses.dataclass
class ImageEncoder:
    """A frozen CLIP image tower and the preprocessing it was trained with."""
    visual: torch.nn.Module
    size: int
    mean: tp.Tuple[float, ...]
    std: tp.Tuple[float, ...]
    dim: int
    tag: str  # identifies model + weights, part of cache keys

    def preprocess(self, frames: np.ndarray, device: tp.Union[str, torch.device],
                   max_pixels: int = 1 << 22) -> torch.Tensor:
        """[T, H, W, 3] uint8 -> [T, 3, size, size] normalised (short-side resize + centre crop).
        Frames are converted to float `max_pixels` pixels at a time (2 frames of 1080p), so a
        batch of large frames never needs all of them as float at once."""
        step = max(1, max_pixels // max(1, frames.shape[1] * frames.shape[2]))
        if len(frames) > step:
            return torch.cat([self.preprocess(frames[i:i + step], device, max_pixels)
                              for i in range(0, len(frames), step)])
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255.
        h, w = x.shape[-2:]
        scale = self.size / min(h, w)
        x = F.interpolate(x, size=(max(self.size, round(h * scale)), max(self.size, round(w * scale))),
                          mode='bicubic', antialias=True, align_corners=False).clamp(0, 1)
        top, left = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
        x = x[..., top:top + self.size, left:left + self.size]
        mean = torch.tensor(self.mean, device=device)[:, None, None]
        std = torch.tensor(self.std, device=device)[:, None, None]
        return (x - mean) / std

    @torch.no_grad()
    def encode(self, frames: np.ndarray, device: tp.Union[str, torch.device] = 'cpu',
               batch_size: int = 64) -> torch.Tensor:
        """[T, H, W, 3] uint8 frames -> [T, dim] float32 CLIP image embeddings."""
        out = []
        for i in range(0, len(frames), batch_size):
            out.append(self.visual(self.preprocess(frames[i:i + batch_size], device)).float())
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    @torch.no_grad()
    def embed_videos(self, videos: tp.Sequence, fps: float, cache=None,
                     device: tp.Union[str, torch.device] = 'cpu', max_frames: int = 64,
                     batch_size: int = 64) -> tp.List[torch.Tensor]:
        """`embed_video` of several videos with their frames embedded together: each video is
        decoded batch by batch and preprocessed (to [n, 3, size, size]), and the frames of all
        videos go through the image tower in shared batches (one call per `max_frames` frames,
        the memory bound, so a long video peaks like a short one: benchmarks/prep_memory.py).
        Writes the cache when given; the caller looks it up first."""
        from ..data.frames import video_frame_batches
        out: tp.List[tp.Optional[torch.Tensor]] = [None] * len(videos)
        pending: tp.List[tp.Tuple[int, torch.Tensor]] = []  # (video index, preprocessed frames)

        def flush():
            if not pending:
                return
            pixels = torch.cat([x for _, x in pending])                      # [n, 3, size, size]
            counts = [(k, len(x)) for k, x in pending]
            pending.clear()  # the parts are in `pixels` now: not held twice while the tower runs
            embeds = torch.cat([self.visual(pixels[i:i + batch_size]).float().cpu()
                                for i in range(0, len(pixels), batch_size)])
            del pixels
            offset = 0
            for k, n in counts:
                part = embeds[offset:offset + n]
                out[k] = part if out[k] is None else torch.cat([out[k], part])
                offset += n

        for k, video in enumerate(videos):
            for frames in video_frame_batches(video, fps):
                pending.append((k, self.preprocess(frames, device)))
                if sum(len(x) for _, x in pending) >= max_frames:
                    flush()
        flush()
        result = []
        for video, embeds in zip(videos, out):
            embeds = embeds if embeds is not None else torch.zeros(0, self.dim)
            if cache is not None:
                cache.put(video, embeds)
                embeds = embeds.half().float()  # exactly what a cache hit returns
            result.append(embeds)
        return result

    def embed_video(self, video, fps: float, cache=None,
                    device: tp.Union[str, torch.device] = 'cpu', lookup: bool = True) -> torch.Tensor:
        """[N, dim] embeddings of a whole video sampled at `fps` (frame i at (i + 0.5) / fps).

        With an `od.data.cache.EmbeddingCache` (built with this encoder's tag and the same fps)
        the video is decoded and embedded once; what is returned is the same on a miss and a hit.
        `lookup=False`: the caller already missed the cache; only write it.
        """
        cached = cache.get(video) if cache is not None and lookup else None
        if cached is not None:
            return cached.float()
        return self.embed_videos([video], fps, cache, device)[0]


def locate_clip(name: str, pretrained: tp.Optional[str]) -> tp.Tuple[str, tp.Optional[str], str]:
    """(open_clip model name, pretrained file or None, cache tag) for a user-facing `name`."""
    if name.startswith('hf-hub:'):
        repo = name[len('hf-hub:'):]
        folder = hf_snapshot(repo, required=(CLIP_CONFIG,), any_of=CLIP_WEIGHTS)
        return f'local-dir:{folder}', None, repo.replace('/', '--')
    local = resolve_reference(name)
    if local.is_dir():
        if not (local / CLIP_CONFIG).exists() or not any((local / w).exists() for w in CLIP_WEIGHTS):
            raise MissingWeightsError(f"{local} must hold {CLIP_CONFIG} and one of {', '.join(CLIP_WEIGHTS)} "
                                      "(open_clip's hub format).")
        return f'local-dir:{local}', None, local.name
    if pretrained is None:
        raise MissingWeightsError(
            f"CLIP '{name}' needs weights: set `pretrained` to a weights file (or //reference/...), or "
            f"use name=hf-hub:<repo> with the repo in the HF cache or the reference folder.")
    weights = resolve_reference(pretrained)
    if not weights.is_file():
        raise MissingWeightsError(f"CLIP weights file not found: {weights} (from {pretrained}).")
    return name, str(weights), f'{name}-{weights.stem}'


def _visual_tensors(weights: str, visual: torch.nn.Module) -> tp.Optional[tp.Dict[str, torch.Tensor]]:
    """The image tower's tensors read one at a time from an open_clip-format safetensors file,
    cast to the tower's dtypes; None when the file does not hold exactly that tower (a model
    that needs open_clip's conversions), so the caller falls back to open_clip's loader."""
    from safetensors import safe_open
    expected = visual.state_dict(keep_vars=True)
    with safe_open(weights, framework='pt') as f:
        if {k[len('visual.'):] for k in f.keys() if k.startswith('visual.')} != set(expected):
            return None
        tensors = {}
        for key, like in expected.items():
            tensor = f.get_tensor('visual.' + key)
            if tensor.shape != like.shape:
                return None
            # a copy of its own: the tower never views the file (which stays mapped, and may be
            # rewritten on disk under it)
            tensors[key] = tensor.to(like.dtype, copy=True)
    return tensors


def _image_tower(model_name: str, weights: tp.Optional[str]) -> tp.Optional[tp.Tuple[torch.nn.Module, dict]]:
    """(image tower, preprocess config) without ever holding the text tower or the whole
    checkpoint: the model is built on the meta device, the text tower dropped, and the
    `visual.*` tensors assigned from the safetensors file, instead of a random whole model plus
    the whole state dict beside it (benchmarks/prep_memory.py measures both). None when the fast
    path does not apply."""
    import open_clip

    local_dir = model_name.startswith('local-dir:')
    if local_dir:  # open_clip finds the weights itself there; the same names, safetensors first
        folder = Path(model_name[len('local-dir:'):])
        weights = next((str(folder / w) for w in CLIP_WEIGHTS if (folder / w).is_file()), None)
    if weights is None or not weights.endswith('.safetensors'):
        return None  # another format: nothing to read tensor by tensor
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # open_clip warns that a model built without weights is random
    try:
        with torch.device('meta'):
            model = open_clip.create_model(model_name, pretrained=None if local_dir else weights,
                                           load_weights=False, pretrained_text=False, device='meta')
    finally:
        logging.disable(previous)
    cfg = open_clip.get_model_preprocess_cfg(model)
    visual = model.visual
    del model
    tensors = _visual_tensors(weights, visual)
    if tensors is None:
        return None
    visual.load_state_dict(tensors, strict=True, assign=True)
    if any(t.is_meta for t in [*visual.parameters(), *visual.buffers()]):
        return None  # a buffer outside the state dict: only a real build fills it
    return visual, cfg


def load_image_encoder(name: str, pretrained: tp.Optional[str] = None,
                       device: tp.Union[str, torch.device] = 'cpu') -> ImageEncoder:
    """The frozen image tower of a CLIP model, from local weights only."""
    import open_clip

    model_name, weights, tag = locate_clip(name, pretrained)
    tower = _image_tower(model_name, weights)
    if tower is None:  # another weights format: open_clip's own loader (whole model, then the tower)
        model = open_clip.create_model(model_name, pretrained=weights, device='cpu', require_pretrained=True)
        tower = model.visual, open_clip.get_model_preprocess_cfg(model)
        del model
    visual, cfg = tower
    size = cfg['size'][0] if isinstance(cfg['size'], (tuple, list)) else cfg['size']
    visual = visual.to(device).eval().requires_grad_(False)
    dim = int(visual.output_dim)
    return ImageEncoder(visual=visual, size=int(size), mean=tuple(cfg['mean']), std=tuple(cfg['std']),
                        dim=dim, tag=tag)
