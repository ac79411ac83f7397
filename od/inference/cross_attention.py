"""Cross-attention whose keys/values are computed once per generate call, not at every step.

During `LMModel.generate` the conditions (hence the cross-attention source [B, S, D]) are fixed,
yet AudioCraft's `StreamingMultiheadAttention` projects them to keys and values again at every
decoding step (its own comment: "when streaming, we could actually save k, v"). With tens of
CLIP tokens per sample instead of one text-free token that slows generation down
(`benchmarks/clip_generation.py` measures it). `CrossAttentionKV` is AudioCraft's module with that saving:
while streaming (generation), the projected keys/values are kept in the module's streaming state
— which AudioCraft clears when the generate call ends — and reused for as long as the source is
the same tensor (or equal to it). The arithmetic is AudioCraft's, op for op, on the same inputs,
so the tokens are identical (tests/test_inference.py). Two configurations are served: AudioCraft's
custom/memory-efficient attention on the torch backend (MusicGen's released models), and its
`torch.nn.MultiheadAttention` one (od's debug/xsmall LMs), for which the steps of
`F.multi_head_attention_forward` (cross-attention, no masks, no weights) are followed as torch
writes them. Outside streaming (training) and in any other configuration it is AudioCraft's
forward unchanged.
"""
from __future__ import annotations

import torch
from audiocraft.modules import transformer as ac
from einops import rearrange
from torch.nn import functional as F


class CrossAttentionKV(ac.StreamingMultiheadAttention):
    """AudioCraft's cross-attention, with keys/values cached for the length of a streaming call."""

    def _supported(self) -> bool:
        if not self.cross_attention or self.training:
            return False
        if self.custom:
            return self.memory_efficient and ac._efficient_attention_backend == 'torch'
        mha = self.mha
        return (mha.batch_first and mha._qkv_same_embed_dim and mha.bias_k is None and not mha.add_zero_attn
                and not self.attention_as_float32)

    def _cached(self, key: torch.Tensor, project):
        """(k, v) of `key` from the streaming state, or `project(key)` stored there."""
        state = self._streaming_state
        source = state.get('od_source')
        if source is not None and source.shape == key.shape and (source is key or torch.equal(source, key)):
            return state['od_k'], state['od_v']
        k, v = project(key)
        state['od_source'], state['od_k'], state['od_v'] = key, k, v
        return k, v

    def _mha_forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """`self.mha(query, key, key)` (batch first, need_weights=False) with k, v cached."""
        mha = self.mha
        E, H = mha.embed_dim, mha.num_heads
        head = E // H
        w_q, w_kv = mha.in_proj_weight.split([E, E * 2])
        b_q = b_kv = None
        if mha.in_proj_bias is not None:
            b_q, b_kv = mha.in_proj_bias.split([E, E * 2])
        q = F.linear(query.transpose(1, 0), w_q, b_q)                       # [T, B, E]
        T, B = q.shape[:2]

        def project(key):
            kv = F.linear(key.transpose(1, 0), w_kv, b_kv)                  # [S, B, 2E]
            kv = kv.unflatten(-1, (2, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()
            S = kv.shape[1]
            return tuple(x.view(S, B * H, head).transpose(0, 1).view(B, H, S, head) for x in (kv[0], kv[1]))
        k, v = self._cached(key, project)
        q = q.view(T, B * H, head).transpose(0, 1).view(B, H, T, head)
        x = F.scaled_dot_product_attention(q, k, v, None, 0.0, False)
        x = x.permute(2, 0, 1, 3).reshape(B * T, E)
        x = F.linear(x, mha.out_proj.weight, mha.out_proj.bias).view(T, B, -1)
        return x.transpose(1, 0)

    def _kv(self, key: torch.Tensor):
        """(k, v) [B, H, S, d] of `key` (custom attention), projected once per streaming call."""
        def project(key):
            dim = self.in_proj_weight.shape[0] // 3
            bias_k = bias_v = None
            if self.in_proj_bias is not None:
                bias_k, bias_v = self.in_proj_bias[dim: 2 * dim], self.in_proj_bias[2 * dim:]
            k = F.linear(key, self.in_proj_weight[dim: 2 * dim], bias_k)
            v = F.linear(key, self.in_proj_weight[2 * dim:], bias_v)
            if self.qk_layer_norm is True:
                k = self.k_layer_norm(k)
            return tuple(rearrange(x, "b t (h d) -> b h t d", h=self.num_heads) for x in (k, v))
        return self._cached(key, project)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if not (self._is_streaming and self._supported() and key is value and attn_mask is None
                and key_padding_mask is None and not need_weights and not is_causal):
            return super().forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                   average_attn_weights, is_causal)
        dtype = query.dtype
        if not self.custom:
            return self._mha_forward(query, key).to(dtype), None
        dim = self.in_proj_weight.shape[0] // 3
        bias_q = None if self.in_proj_bias is None else self.in_proj_bias[:dim]
        q = F.linear(query, self.in_proj_weight[:dim], bias_q)
        if self.qk_layer_norm is True:
            q = self.q_layer_norm(q)
        q = rearrange(q, "b t (h d) -> b h t d", h=self.num_heads)
        k, v = self._kv(key)
        if self.attention_as_float32:
            q, k, v = [x.float() for x in (q, k, v)]
        x = F.scaled_dot_product_attention(q, k, v, is_causal=False, dropout_p=0)
        x = rearrange(x.to(dtype), "b h t d -> b t (h d)", h=self.num_heads)
        return self.out_proj(x), None


def install(lm: torch.nn.Module) -> int:
    """Make every cross-attention module of `lm` a `CrossAttentionKV` (same parameters, same
    state: only the class changes); returns how many. Idempotent."""
    count = 0
    for module in lm.modules():
        if type(module) is ac.StreamingMultiheadAttention and module.cross_attention:
            module.__class__ = CrossAttentionKV
            count += 1
        elif isinstance(module, CrossAttentionKV):
            count += 1
    return count
