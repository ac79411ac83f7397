"""`cond` encoder: the condition tokens a trained od model's conditioner gives a file.

    --encoders cond=logs/xps/<sig>/checkpoint.th        (or //sig/<sig>, or a make_ckpt output)
    --option cond.attribute=self_wav                     (which conditioner, when there are several)

This is the space the LM actually attends to: e.g. for `clip_frames`, CLIP frame embeddings
(+ the learned temporal position embedding) through the trained `output_proj`, [T, D_lm],
mean-pooled over the unmasked tokens. Only the conditioning provider is built (from the
checkpoint's own XP config, through od's registry) and its trained weights loaded: no LM.
Waveform conditioners get what training gives them: a WavCondition with the file's path, seek
time 0 and its length (videos: their duration; audio: the decoded wave at the model's rate).
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np
import torch

from ..core.safe_load import torch_load
from ..data.frames import IMAGE_EXTS, VIDEO_EXTS
from ..data.manifest import AUDIO_EXTS
from .encoders import Encoder, EncoderContext, register_encoder


def load_condition_provider(checkpoint: str, device: str = 'cpu'):
    """(XP config, ConditioningProvider with its trained weights) of an od checkpoint."""
    from omegaconf import OmegaConf

    from ..conditioners import registry
    from ..core.environment import resolve_reference
    from ..inference.loaders import load_lm_state
    if checkpoint.startswith('//sig/'):
        from ..core.xps import sig_checkpoint
        path = sig_checkpoint(checkpoint)
    else:
        path = resolve_reference(checkpoint)
        path = path / 'checkpoint.th' if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"od checkpoint not found: {path} (give a Dora checkpoint.th, an XP folder, "
                                "//sig/<sig> or a make_ckpt output).")
    pkg = torch_load(path, 'checkpoint', mmap=True)  # mmap: only the config is read
    if 'xp.cfg' not in pkg:
        raise ValueError(f"{path} holds no XP config ('xp.cfg'): cannot tell which conditioners to build.")
    cfg = OmegaConf.create(pkg['xp.cfg'])
    cfg.device = device
    registry.require_registered(cfg, path)  # plugins come from the user's --plugin, never the file
    provider = registry.get_conditioner_provider(int(cfg.transformer_lm.dim), cfg)
    prefix = 'condition_provider.'
    state = {k[len(prefix):]: v for k, v in load_lm_state(str(path)).items() if k.startswith(prefix)}
    provider.load_state_dict(state)  # strict: the trained conditioner, exactly
    return cfg, provider.eval()


@register_encoder('cond')
def condition_encoder(arg: tp.Optional[str], context: EncoderContext) -> Encoder:
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    from audiocraft.modules.conditioners import WaveformConditioner

    from ..data.frames import video_duration
    if arg is None:
        raise ValueError("cond needs a checkpoint: --encoders cond=logs/xps/<sig>/checkpoint.th")
    cfg, provider = load_condition_provider(arg, context.device)
    waveform = {k: c for k, c in provider.conditioners.items() if isinstance(c, WaveformConditioner)}
    attribute = context.options.get('cond.attribute') or (next(iter(waveform)) if len(waveform) == 1 else None)
    if attribute not in waveform:
        raise ValueError(f"Choose the conditioner with --option cond.attribute=<one of {sorted(waveform)}> "
                         f"(checkpoint {arg}).")
    conditioner = waveform[attribute]
    # od's media conditioners declare what they read (clip_frames: video, image; clap_audio: audio).
    from ..conditioners.media import media_kinds
    from ..conditioners.media_carrier import audio_condition, media_condition
    kinds = media_kinds(conditioner, default=('audio',))
    visual = 'audio' not in kinds
    sample_rate = int(cfg.sample_rate)

    @torch.no_grad()
    def embed(path: Path) -> np.ndarray:
        if visual:
            seconds = 1. if path.suffix.lower() in IMAGE_EXTS else video_duration(path)
            condition = media_condition(str(path), 0., seconds, sample_rate, context.device)
        else:
            audio, sr = audio_read(path)                                          # [C, T]
            wav = convert_audio(audio, sr, sample_rate, int(cfg.channels))[None]  # [1, C, T]
            condition = audio_condition(wav.to(context.device), sample_rate, str(path))
        tokens, mask = conditioner(conditioner.tokenize(condition))              # [1, T, D], [1, T]
        if not mask.any():
            raise ValueError(f"{attribute} gave the null condition (the file could not be read)")
        return tokens[0][mask[0].bool()].float().cpu().numpy()                   # [T', D]
    exts = ((VIDEO_EXTS if 'video' in kinds else ()) + (IMAGE_EXTS if 'image' in kinds else ())
            + (tuple(AUDIO_EXTS) if 'audio' in kinds else ()))
    return Encoder('cond', exts, embed)
