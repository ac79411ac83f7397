"""A conditioner defined outside od, registered through `registry_modules` (test plugin)."""
import math
import typing as tp

import torch
from audiocraft.modules.conditioners import TextConditioner

from od.conditioners.registry import register_conditioner


@register_conditioner('tempo_test')
class TempoConditioner(TextConditioner):
    """bpm (a number in the sidecar) -> sinusoidal features -> output_dim, one token."""

    def __init__(self, output_dim: int, dim: int = 16):
        super().__init__(dim, output_dim)
        self.dim = dim

    def tokenize(self, x: tp.List[tp.Optional[tp.Any]]) -> tp.Dict[str, torch.Tensor]:
        bpm = torch.tensor([float(v) if v is not None else 0. for v in x])
        mask = torch.tensor([[1 if v is not None else 0] for v in x])
        return {'bpm': bpm, 'mask': mask}

    def forward(self, inputs):
        bpm, mask = inputs['bpm'], inputs['mask']
        freqs = torch.exp(torch.arange(self.dim // 2) * (-math.log(1000.) / (self.dim // 2)))
        angles = bpm[:, None] * freqs[None].to(bpm.device)               # [B, dim/2]
        feats = torch.cat([angles.sin(), angles.cos()], dim=-1)[:, None]  # [B, 1, dim]
        embeds = self.output_proj(feats.to(self.output_proj.weight)) * mask[..., None]
        return embeds, mask
