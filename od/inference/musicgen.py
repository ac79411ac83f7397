"""MusicGen that generates from what od's conditioners read: video, image, reference audio, text.

`ODMusicGen` is AudioCraft's `MusicGen` (same generation parameters, same decoding) plus
`generate_from(...)`, which builds the ConditioningAttributes od's conditioners expect: text
for text conditioners, and for waveform conditioners a `WavCondition` whose `path` is the media
file and whose `seek_time`/`length` give the window — the same carrier the training data uses
(od/conditioners/media_carrier.py). Every attribute the model has but the caller did not give
gets its null form, as classifier-free guidance does.

Longer than the model's `max_duration`: generation continues with AudioCraft's extension
stride (the last `max_duration - extend_stride` seconds prompt the next chunk), and each chunk
is conditioned on *its own* window of the media, so the music follows the video.

The LM's cross-attention projects the conditions to keys/values once per generate call
(od/inference/cross_attention.py), not at every decoding step; the tokens are the same.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import torch
from audiocraft.models.musicgen import MusicGen
from audiocraft.modules.conditioners import ConditioningAttributes, JointEmbedCondition

from ..conditioners import time_aligned
from ..conditioners.media import media_kinds
from ..conditioners.media_carrier import carries_audio, is_null, media_condition, windows, with_window
from ..data.formats import AUDIO_EXTS, IMAGE_EXTS, VIDEO_EXTS
from . import cross_attention

Media = tp.Union[str, Path, tp.Sequence[tp.Union[str, Path]]]


def media_kind(path: tp.Union[str, Path]) -> str:
    """'video', 'image' or 'audio', from the file name."""
    suffix = Path(path).suffix.lower()
    for kind, exts in (('video', VIDEO_EXTS), ('image', IMAGE_EXTS), ('audio', AUDIO_EXTS)):
        if suffix in exts:
            return kind
    raise ValueError(f"{path}: unknown media type '{suffix}' (video {VIDEO_EXTS}, image {IMAGE_EXTS}, "
                     f"audio {AUDIO_EXTS})")


class ODMusicGen(MusicGen):
    """AudioCraft's MusicGen with media conditioning through od's registry conditioners."""

    def __init__(self, name: str, compression_model, lm, max_duration: tp.Optional[float] = None):
        super().__init__(name, compression_model, lm, max_duration)
        cross_attention.install(self.lm)
        time_aligned.bind(self.lm, self.compression_model.frame_rate)  # clip_sync's token rate

    def set_generation_params(self, use_sampling: bool = True, top_k: int = 250, top_p: float = 0.0,
                              temperature: float = 1.0, duration: float = 30.0, cfg_coef: float = 3.0,
                              two_step_cfg: bool = False, extend_stride: tp.Optional[float] = None):
        """AudioCraft's parameters; `extend_stride` defaults to 18 s, or 60 % of `max_duration`
        for models trained on segments shorter than 30 s (it must stay below max_duration).
        `top_k` above the codebook size keeps every code (torch.topk would refuse it)."""
        top_k = min(int(top_k), int(self.lm.card))
        if extend_stride is None:
            extend_stride = min(18., 0.6 * self.max_duration)
        super().set_generation_params(use_sampling=use_sampling, top_k=top_k, top_p=top_p,
                                      temperature=temperature, duration=duration, cfg_coef=cfg_coef,
                                      two_step_cfg=two_step_cfg, extend_stride=extend_stride)

    # ---- which conditioner reads which media --------------------------------------------
    def media_attributes(self) -> tp.Dict[str, tp.Tuple[str, ...]]:
        """Waveform attributes of this model -> media kinds their conditioner reads."""
        provider = self.lm.condition_provider
        return {name: media_kinds(provider.conditioners[name])
                for name in provider.wav_conditions}

    def supports(self, kind: str) -> bool:
        """Whether this model has a conditioner for 'video', 'image', 'audio' or 'text'."""
        if kind == 'text':
            provider = self.lm.condition_provider
            return bool(provider.text_conditions or provider.joint_embed_conditions)
        return any(kind in kinds for kinds in self.media_attributes().values())

    def _attribute_for(self, path: tp.Union[str, Path]) -> str:
        kind = media_kind(path)
        for name, kinds in self.media_attributes().items():
            if kind in kinds:
                return name
        have = {name: kinds or ('no media: AudioCraft conditioner',) for name, kinds in self.media_attributes().items()}
        raise ValueError(f"This model has no conditioner for {kind} input ({path}); its waveform "
                         f"conditioners read: {have or 'nothing'}.")

    # ---- attributes -----------------------------------------------------------------------
    def make_attributes(self, descriptions: tp.Sequence[tp.Optional[str]],
                        media: tp.Sequence[tp.Optional[Media]], start: tp.Sequence[float],
                        window: float) -> tp.List[ConditioningAttributes]:
        """One ConditioningAttributes per sample: text + media windows `[start, start + window)`.

        A media entry may be a list of files: their frames share the window (see
        `od.conditioners.clip_frames.MediaMix`), e.g. seed 003's transition test.
        """
        provider = self.lm.condition_provider
        out = []
        for desc, item, seek in zip(descriptions, media, start):
            attr = ConditioningAttributes()
            for name in provider.text_conditions:
                attr.text[name] = desc
            for name in provider.joint_embed_conditions:
                attr.joint_embed[name] = JointEmbedCondition(
                    torch.zeros(1, 1, 1, device=self.device), [desc], torch.zeros(1, dtype=torch.long),
                    [self.sample_rate], [None], [0.])
            given = {}
            if item is not None:
                files = [item] if isinstance(item, (str, Path)) else list(item)
                name = self._attribute_for(files[0])
                given[name] = str(files[0]) if len(files) == 1 else media_mix(files)
            for name in provider.wav_conditions:
                attr.wav[name] = media_condition(given.get(name), seek, window, self.sample_rate, self.device)
            out.append(attr)
        return out

    @torch.no_grad()
    def generate_from(self, descriptions: tp.Optional[tp.Sequence[tp.Optional[str]]] = None,
                      media: tp.Optional[tp.Sequence[tp.Optional[Media]]] = None,
                      start: tp.Union[float, tp.Sequence[float]] = 0., progress: bool = False,
                      return_tokens: bool = False):
        """Generate `self.duration` seconds per sample from text and/or media windows.

        Args:
            descriptions: one text per sample (None entries: no text).
            media: one video/image/audio path per sample (or a list of paths to mix), None: no media.
            start: where each media window starts (seconds); the window is `self.duration` long.
        Returns:
            audio [B, C, T] (and tokens [B, K, S] with `return_tokens`).
        """
        n = len(descriptions if descriptions is not None else media or [])
        if n == 0:
            raise ValueError("give descriptions and/or media")
        descriptions = list(descriptions) if descriptions is not None else [None] * n
        media = list(media) if media is not None else [None] * n
        starts = [float(start)] * n if isinstance(start, (int, float)) else [float(s) for s in start]
        if not len(descriptions) == len(media) == len(starts):
            raise ValueError("descriptions, media and start must have one entry per sample")
        attributes = self.make_attributes(descriptions, media, starts, min(self.duration, self.max_duration))
        tokens = self._generate_tokens(attributes, None, progress)
        audio = self.generate_audio(tokens)
        return (audio, tokens) if return_tokens else audio

    def _generate_tokens(self, attributes: tp.List[ConditioningAttributes],
                         prompt_tokens: tp.Optional[torch.Tensor], progress: bool = False) -> torch.Tensor:
        """Past `max_duration`, od's extension loop serves every conditioner combination (text,
        concepts, od's path-carried media, none): AudioCraft's loop reads `attr.wav['self_wav']`,
        which a model without that attribute does not have. Only a waveform carried in the
        attributes themselves (AudioCraft's melody conditioning) keeps AudioCraft's loop, which
        windows that waveform per chunk."""
        if self.duration <= self.max_duration or _carries_waveform(attributes):
            return super()._generate_tokens(attributes, prompt_tokens, progress)
        return self._generate_extended(attributes, prompt_tokens, progress)

    def _generate_extended(self, attributes, prompt_tokens, progress) -> torch.Tensor:
        """Chunks of at most `max_duration`, each prompted by the previous chunk's last
        `max_duration - extend_stride` seconds and conditioned on its own media window."""
        assert self.extend_stride is not None and self.extend_stride < self.max_duration
        total = int(self.duration * self.frame_rate)
        stride = int(self.extend_stride * self.frame_rate)
        chunk = int(self.max_duration * self.frame_rate)
        kept = [prompt_tokens] if prompt_tokens is not None else []
        done = 0  # output tokens before the current prompt
        base_seek = [{name: windows(c)[0][1] for name, c in a.wav.items()} for a in attributes]
        while True:
            prompt_len = 0 if prompt_tokens is None else prompt_tokens.shape[-1]
            gen_len = min(total - done, chunk)  # prompt included; > prompt_len by the loop's exit test
            for attr, seeks in zip(attributes, base_seek):
                for name, cond in list(attr.wav.items()):
                    if not is_null(cond):
                        attr.wav[name] = with_window(cond, (seeks[name] or 0.) + done / self.frame_rate,
                                                     gen_len / self.frame_rate)
            callback = None
            if progress:
                def callback(generated: int, to_generate: int, _done=done):
                    print(f'{_done + generated: 6d} / {total: 6d}', end='\r')
            with self.autocast:
                tokens = self.lm.generate(prompt_tokens, attributes, callback=callback,
                                          max_gen_len=gen_len, **self.generation_params)
            kept.append(tokens[..., prompt_len:])
            if done + tokens.shape[-1] >= total:
                break
            prompt_tokens = tokens[..., stride:]
            done += stride
        return torch.cat(kept, dim=-1)[..., :total]


def _carries_waveform(attributes: tp.Sequence[ConditioningAttributes]) -> bool:
    """Whether a wav condition holds real audio (not od's [1, 1, 1] path-carrier placeholder)."""
    return any(carries_audio(c) for a in attributes for c in a.wav.values())


def media_mix(files: tp.Sequence[tp.Union[str, Path]]):
    """The key a mix of several videos (a transition) is conditioned and cached under."""
    from ..conditioners.clip_frames import MediaMix
    return MediaMix(str(f) for f in files)
