"""A MusicGen compression model as a transformers `EncodecModel` (for `od.export --format transformers`).

transformers' MusicGen decodes with its own `EncodecModel`, so an export needs the codec in that
form. Two kinds convert:

  - a Hugging Face EnCodec (AudioCraft's `HFEncodecCompressionModel`, e.g.
    `facebook/encodec_32khz`, or od's `hf_encodec` package): taken as it is;
  - an EnCodec built by AudioCraft (SEANet encoder/decoder + residual VQ: its random debug model,
    or one trained with AudioCraft's compression solver): rebuilt as a transformers EncodecModel
    layer by layer. The two are the same SEANet design; what transformers lacks is mapped
    exactly: a convolution without weight norm becomes a weight-normed one whose norm equals its
    weight's (g = ||w||, v = w, so g * v / ||v|| = w); a SEANet without LSTM gets a transformers
    LSTM whose weights are all zero (its output is then exactly 0, and the block's skip
    connection passes the input through unchanged); a codebook whose size is not a power of two
    (the debug model's 400) is padded to one with rows no input is ever nearest to.

Everything else is refused with the reason: time-group / spectral norm, activations other than
ELU(1), VQ projections, input renormalisation, stereo or interleaved codecs, other codec classes.
Every conversion is checked numerically (`check_codec`): the same codes must decode to the same
audio.
"""
from __future__ import annotations

import math
import typing as tp

import torch
from torch import nn


class CodecNotExportable(ValueError):
    """The compression model has no exact transformers EncodecModel form (the message says why)."""


def _effective_weight(conv: nn.Module) -> torch.Tensor:
    """The weight a conv really applies: with torch's (legacy) weight norm, g * v / ||v||."""
    if hasattr(conv, 'weight_g') and hasattr(conv, 'weight_v'):
        v, g = conv.weight_v, conv.weight_g
        return v * (g / v.norm(dim=tuple(range(1, v.dim())), keepdim=True))
    return conv.weight  # plain, or a parametrisation that computes it


def _set_weight_normed(target: nn.Module, weight: torch.Tensor, bias: tp.Optional[torch.Tensor]) -> None:
    """Give a transformers weight-normed conv exactly `weight` (g = ||w|| over dims > 0, v = w)."""
    g = weight.norm(dim=tuple(range(1, weight.dim())), keepdim=True)
    params = target.parametrizations.weight
    params.original0.copy_(g)
    params.original1.copy_(weight)
    if bias is None:
        target.bias.zero_()
    else:
        target.bias.copy_(bias)


def _seanet_units(sequential: nn.Sequential) -> tp.List[tp.Tuple[str, nn.Module]]:
    """AudioCraft SEANet layers as (kind, module): conv, convtr, resblock, lstm, elu."""
    from audiocraft.modules.conv import StreamableConv1d, StreamableConvTranspose1d
    from audiocraft.modules.lstm import StreamableLSTM
    from audiocraft.modules.seanet import SEANetResnetBlock
    units = []
    for module in sequential:
        if isinstance(module, StreamableConv1d):
            units.append(('conv', module))
        elif isinstance(module, StreamableConvTranspose1d):
            units.append(('convtr', module))
        elif isinstance(module, SEANetResnetBlock):
            units.append(('resblock', module))
        elif isinstance(module, StreamableLSTM):
            if not module.skip:
                raise CodecNotExportable("its LSTM has no skip connection (transformers' EnCodec always has one)")
            units.append(('lstm', module))
        elif isinstance(module, nn.ELU):
            if module.alpha != 1.0:
                raise CodecNotExportable(f"it uses ELU(alpha={module.alpha}); transformers' EnCodec uses ELU(1)")
            units.append(('elu', module))
        else:
            raise CodecNotExportable(f"its SEANet holds a {type(module).__name__}, which transformers' EnCodec lacks")
    return units


def _hf_units(layers: nn.ModuleList) -> tp.List[tp.Tuple[str, nn.Module]]:
    from transformers.models.encodec import modeling_encodec as me
    kinds = {me.EncodecConv1d: 'conv', me.EncodecConvTranspose1d: 'convtr', me.EncodecResnetBlock: 'resblock',
             me.EncodecLSTM: 'lstm', nn.ELU: 'elu'}
    return [(kinds[type(m)], m) for m in layers]


def _conv_parts(unit: nn.Module) -> tp.Tuple[nn.Module, str]:
    """(the torch conv inside an AudioCraft Streamable(Transpose)Conv1d, its norm type)."""
    norm_conv = unit.conv if hasattr(unit, 'conv') else unit.convtr
    inner = norm_conv.conv if hasattr(norm_conv, 'conv') else norm_conv.convtr
    if norm_conv.norm_type not in ('none', 'weight_norm'):
        raise CodecNotExportable(f"it uses '{norm_conv.norm_type}' normalisation (convertible: none, weight_norm)")
    return inner, norm_conv.norm_type


def seanet_config(compression) -> dict:
    """transformers EncodecConfig arguments of an AudioCraft EncodecModel (refuses what has none)."""
    from audiocraft.modules.seanet import SEANetDecoder, SEANetEncoder
    from audiocraft.quantization.vq import ResidualVectorQuantizer
    enc, dec, quant = compression.encoder, compression.decoder, compression.quantizer
    if not (isinstance(enc, SEANetEncoder) and isinstance(dec, SEANetDecoder)):
        raise CodecNotExportable(f"its encoder/decoder are {type(enc).__name__}/{type(dec).__name__}, not SEANet")
    if not isinstance(quant, ResidualVectorQuantizer):
        raise CodecNotExportable(f"its quantizer is a {type(quant).__name__}, not a residual VQ")
    if getattr(compression, 'renormalize', False):
        raise CodecNotExportable("it renormalises its input (transformers' `normalize` differs)")
    layers = quant.vq.layers
    if any(not isinstance(layer.project_in, nn.Identity) for layer in layers):
        raise CodecNotExportable("its VQ codebooks have input/output projections")
    if enc.ratios[::-1] != list(dec.ratios) or enc.n_filters != dec.n_filters or enc.dimension != dec.dimension:
        raise CodecNotExportable("its encoder and decoder are not mirror images")
    units = _seanet_units(enc.model)
    first, _ = _conv_parts(units[0][1])
    last, _ = _conv_parts(units[-1][1])
    blocks = [m for kind, m in units if kind == 'resblock']
    lstms = [m for kind, m in units if kind == 'lstm']
    dec_lstms = [m for kind, m in _seanet_units(dec.model) if kind == 'lstm']
    layers_differ = bool(lstms) and dec_lstms[0].lstm.num_layers != lstms[0].lstm.num_layers
    if len(lstms) != len(dec_lstms) or len(lstms) > 1 or layers_differ:
        raise CodecNotExportable("its encoder and decoder LSTMs differ")
    block = blocks[0] if blocks else None
    if block is not None:
        res_conv, _ = _conv_parts(block.block[1])
        hidden = block.block[1].conv.conv.out_channels
        compress = res_conv.in_channels // hidden
        shortcut = not isinstance(block.shortcut, nn.Identity)
        dilation_rate = _conv_parts(blocks[1].block[1])[0].dilation[0] if enc.n_residual_layers > 1 else 2
    else:
        raise CodecNotExportable("its SEANet has no residual blocks")
    bins = 2 ** math.ceil(math.log2(int(quant.bins)))  # transformers needs a power of two: see audiocraft_to_hf
    n_q = len(layers)
    sample_rate = int(compression.sample_rate)
    hop = int(math.prod(dec.ratios))
    frame_rate = math.ceil(sample_rate / hop)
    if abs(frame_rate - compression.frame_rate) > 1e-6:
        raise CodecNotExportable(f"its frame rate {compression.frame_rate} is not sample rate / hop ({frame_rate})")
    # transformers derives the number of codebooks from the bandwidth twice, with ceil(log2) bits
    # per code in one place and log2 in the other: take a bandwidth both map to n_q.
    nbits, log2 = math.ceil(math.log2(bins)), math.log2(bins)
    low, high = n_q * frame_rate * nbits, (n_q + 1) * frame_rate * log2
    if low >= high:
        raise CodecNotExportable(f"no bandwidth gives transformers {n_q} codebooks of {bins} codes")
    conv0 = units[0][1]
    return dict(
        target_bandwidths=[(low + high) / 2 / 1000], sampling_rate=sample_rate, audio_channels=int(enc.channels),
        normalize=False, chunk_length_s=None, overlap=None, hidden_size=int(enc.dimension),
        num_filters=int(enc.n_filters), num_residual_layers=int(enc.n_residual_layers),
        upsampling_ratios=[int(r) for r in dec.ratios], norm_type='weight_norm',
        kernel_size=int(first.kernel_size[0]), last_kernel_size=int(last.kernel_size[0]),
        residual_kernel_size=int(res_conv.kernel_size[0]), dilation_growth_rate=int(dilation_rate),
        use_causal_conv=bool(conv0.causal), pad_mode=str(conv0.pad_mode), compress=int(compress),
        num_lstm_layers=int(lstms[0].lstm.num_layers) if lstms else 1,
        trim_right_ratio=float(next(m for k, m in _seanet_units(dec.model) if k == 'convtr').trim_right_ratio),
        codebook_size=bins, codebook_dim=int(quant.dimension), use_conv_shortcut=bool(shortcut))


def _copy_conv(src: nn.Module, dst: nn.Module) -> None:
    inner, _ = _conv_parts(src)
    target, weight = dst.conv, _effective_weight(inner)
    if tuple(target.weight.shape) != tuple(weight.shape):
        raise CodecNotExportable(f"a convolution has shape {tuple(target.weight.shape)} in transformers' layout "
                                 "but another in the AudioCraft model")
    _set_weight_normed(target, weight, inner.bias)


def _copy_units(src_units, dst_units) -> None:
    src_units = list(src_units)
    dst_kinds = [k for k, _ in dst_units]
    if 'lstm' in dst_kinds and 'lstm' not in [k for k, _ in src_units]:
        src_units.insert(dst_kinds.index('lstm'), ('lstm', None))   # no LSTM: a zero one (see module doc)
    if [k for k, _ in src_units] != dst_kinds:
        raise CodecNotExportable(f"its layers ({[k for k, _ in src_units]}) do not line up with transformers' "
                                 f"EnCodec ({dst_kinds})")
    for (kind, src), (_, dst) in zip(src_units, dst_units):
        if kind in ('conv', 'convtr'):
            _copy_conv(src, dst)
        elif kind == 'resblock':
            pairs = [(s, d) for s, d in zip(src.block, dst.block) if not isinstance(s, nn.ELU)]
            for s, d in pairs:
                _copy_conv(s, d)
            if not isinstance(src.shortcut, nn.Identity):
                _copy_conv(src.shortcut, dst.shortcut)
        elif kind == 'lstm':
            if src is None:
                for tensor in dst.lstm.parameters():
                    tensor.zero_()
            else:
                dst.lstm.load_state_dict(src.lstm.state_dict())


@torch.no_grad()
def audiocraft_to_hf(compression):
    """transformers EncodecModel holding exactly an AudioCraft EncodecModel's weights."""
    from transformers import EncodecConfig, EncodecModel
    config = EncodecConfig(**seanet_config(compression))
    if config.num_quantizers != len(compression.quantizer.vq.layers):
        raise CodecNotExportable("transformers would build another number of codebooks")
    hf = EncodecModel(config).eval()
    _copy_units(_seanet_units(compression.encoder.model), _hf_units(hf.encoder.layers))
    _copy_units(_seanet_units(compression.decoder.model), _hf_units(hf.decoder.layers))
    for src, dst in zip(compression.quantizer.vq.layers, hf.quantizer.layers):
        embed = src._codebook.embed.detach()                                  # [bins, D]
        # Rows past AudioCraft's `bins` (padding up to a power of two) lie so far away that no
        # input is ever nearest to them, and the LM never emits them: encode and decode are unchanged.
        far = torch.full((config.codebook_size - len(embed), embed.shape[1]), 1e4 * (1 + float(embed.abs().max())))
        embed = torch.cat([embed, far])
        dst.codebook.embed.copy_(embed)
        dst.codebook.embed_avg.copy_(embed)
        dst.codebook.cluster_size.fill_(1.)
        dst.codebook.inited.fill_(1.)
    return hf


def to_hf_encodec(compression):
    """The transformers EncodecModel of a MusicGen compression model, or CodecNotExportable."""
    from audiocraft.models.encodec import EncodecModel, HFEncodecCompressionModel
    if isinstance(compression, HFEncodecCompressionModel):
        import copy
        return copy.deepcopy(compression.model).eval()
    if type(compression) is EncodecModel:
        return audiocraft_to_hf(compression)
    raise CodecNotExportable(
        f"a {type(compression).__name__} compression model has no transformers EncodecModel form (convertible: "
        "Hugging Face EnCodec, e.g. facebook/encodec_32khz, and AudioCraft SEANet EnCodec models such as its "
        "debug model or one trained with AudioCraft's compression solver)")


@torch.no_grad()
def check_codec(compression, hf, frames: int = 12, seed: int = 0) -> float:
    """Max |audio| difference when both decode the same random codes (relative to the audio's peak)."""
    generator = torch.Generator().manual_seed(seed)
    n_q = hf.config.num_quantizers
    codes = torch.randint(0, compression.cardinality, (1, n_q, frames), generator=generator)   # [B, K, T]
    device = next(compression.parameters()).device
    ours = compression.decode(codes.to(device))                                              # [B, C, T']
    theirs = hf.decode(codes[None].to(hf.device), [None]).audio_values                        # [B, C, T']
    if ours.shape != theirs.shape:
        raise CodecNotExportable(f"decoded lengths differ: {tuple(ours.shape)} vs {tuple(theirs.shape)}")
    return float((ours.cpu() - theirs.cpu()).abs().max() / ours.abs().max().clamp_min(1e-8))
