"""od's MusicGen as a Hugging Face transformers model folder (`od.export --format transformers`).

    from transformers import AutoProcessor, MusicgenForConditionalGeneration
    model = MusicgenForConditionalGeneration.from_pretrained('checkpoints/mymodel-hf')
    processor = AutoProcessor.from_pretrained('checkpoints/mymodel-hf')
    audio = model.generate(**processor(text=['calm piano'], padding=True, return_tensors='pt'))

The folder holds `config.json` (text encoder, audio encoder, decoder), `model.safetensors` (all
three: the T5 encoder the model was trained with, the EnCodec, the LM), the tokenizer and the
EnCodec feature extractor (`AutoProcessor`), and `generation_config.json` with od's generation
defaults (sampling, top-k, classifier-free guidance scale, duration). Only what transformers'
MusicGen can express is exported: one T5 text conditioner fused by cross-attention, the delay
codebook pattern, AudioCraft's pre-norm bias-free transformer with sinusoidal positions, and a
compression model with an exact transformers EncodecModel form (od/encoders/hf_encodec.py).
Everything else (CLIP, CLAP, lookup-table conditioners, other patterns or LM options) is refused
with the reason before anything is written.

The weight mapping is od's own, written from the two libraries' module names (AudioCraft's
`LMModel` / `StreamingTransformerLayer`, transformers' `MusicgenForCausalLM` /
`MusicgenDecoderLayer`); see `LM_RULES`. The export checks itself: the folder is reloaded with
transformers and its decoder logits compared with od's LM on the same codes and text (and on
the null condition of classifier-free guidance) before the folder is moved into place.

One difference between the libraries remains: for a *batch* of prompts of different lengths,
AudioCraft's cross-attention also attends to the (zeroed) padding positions of the shorter
prompts, while transformers masks them, so batched generations differ slightly; one prompt (or
prompts of equal token length) gives the same logits.
"""
from __future__ import annotations

import re
import typing as tp
from pathlib import Path

import torch

from ..encoders.hf_encodec import CodecNotExportable, check_codec, to_hf_encodec

EXPORT_INFO = 'od_export.json'
TEXT_ATTRIBUTE = 'description'
DEFAULT_DURATION = 10.0   # od.generate's defaults (od/inference/generation.py), used when the model's config has none
DEFAULT_TOP_K = 250
DEFAULT_CFG = 3.0
CHECK_PROMPT = 'an upbeat track with a warm bass line'
LOGITS_TOLERANCE = 1e-3   # relative to the logits' scale; float32 mappings land near 1e-6


class NotExportable(ValueError):
    """The model has no transformers MusicGen form; the message lists every reason."""


# ---- what transformers' MusicGen can express -------------------------------------------------
LM_OPTIONS = {  # transformer_lm option -> the only value transformers' MusicgenDecoder implements
    'norm_first': True, 'bias_ff': False, 'bias_attn': False, 'bias_proj': False, 'layer_scale': None,
    'positional_embedding': 'sin', 'xpos': False, 'activation': 'gelu', 'norm': 'layer_norm',
    'qk_layer_norm': False, 'qk_layer_norm_cross': False, 'kv_repeat': 1, 'past_context': None, 'causal': True,
    'positional_scale': 1.0, 'max_period': 10000,
}


def check_exportable(cfg: dict) -> None:
    """Raise NotExportable listing every part of the model's config transformers cannot express."""
    from omegaconf import OmegaConf
    conf = OmegaConf.create(cfg)
    why = []
    conditioners = dict(conf.get('conditioners') or {})
    kinds = {name: str(c.get('model')) for name, c in conditioners.items()}
    if list(kinds.values()) != ['t5']:
        why.append(f"its conditioners are {kinds or 'none'}: transformers' MusicGen has one T5 text "
                   "encoder (conditioner=text2music); CLIP (video/image), CLAP (reference audio), "
                   "lookup-table and chroma conditioners have no transformers form"
                   + ("; textual-inversion rows (t5_ti) are not exported yet" if 't5_ti' in kinds.values() else ''))
    else:
        name = next(iter(kinds))
        args = conditioners[name].get('t5') or {}
        if args.get('normalize_text'):
            why.append("its T5 conditioner normalises text with spaCy (normalize_text=true), which the "
                       "transformers tokenizer does not do")
        fuser = conf.get('fuser') or {}
        others = any(fuser.get(k) for k in ('sum', 'prepend', 'input_interpolate', 'time'))
        if list(fuser.get('cross') or []) != [name] or others:
            why.append(f"its fuser is not cross-attention on '{name}' only: {OmegaConf.to_container(fuser)}")
        if fuser.get('cross_attention_pos_emb'):
            why.append("its fuser adds position embeddings to the cross-attention input")
    if conf.get('lm_model') != 'transformer_lm':
        why.append(f"its LM is '{conf.get('lm_model')}', not AudioCraft's transformer_lm")
    pattern = conf.get('codebooks_pattern') or {}
    n_q = int(conf.transformer_lm.n_q)
    delay = pattern.get('delay') or {}
    if pattern.get('modeling') != 'delay' or list(delay.get('delays') or range(n_q)) != list(range(n_q)) \
            or delay.get('flatten_first', 0) or delay.get('empty_initial', 0):
        why.append(f"its codebook pattern is '{pattern.get('modeling')}' {dict(delay) if delay else ''}: "
                   f"transformers implements the delay pattern with delays 0..{n_q - 1}")
    lm_cfg = conf.transformer_lm
    for key, value in LM_OPTIONS.items():
        if key in lm_cfg and lm_cfg.get(key) != value:
            why.append(f"transformer_lm.{key}={lm_cfg.get(key)} (transformers' MusicGen implements {value})")
    if int(conf.get('channels', 1)) != 1:
        why.append("it is a stereo model (od exports mono MusicGen)")
    if why:
        raise NotExportable("this model cannot be exported to transformers:\n  - " + "\n  - ".join(why))


# ---- the LM mapping: AudioCraft LMModel key -> MusicgenForConditionalGeneration key(s) ----------
_LAYER = r'transformer\.layers\.(\d+)\.'
_DEC = 'decoder.model.decoder.'
LM_RULES: tp.List[tp.Tuple[str, tp.Union[str, tp.Tuple[str, str, str]]]] = [
    (r'emb\.(\d+)\.weight', _DEC + r'embed_tokens.\1.weight'),
    (_LAYER + r'self_attn\.(?:mha\.)?in_proj_weight',
     tuple(_DEC + rf'layers.\1.self_attn.{p}_proj.weight' for p in 'qkv')),
    (_LAYER + r'self_attn\.(?:mha\.)?out_proj\.weight', _DEC + r'layers.\1.self_attn.out_proj.weight'),
    (_LAYER + r'cross_attention\.(?:mha\.)?in_proj_weight',
     tuple(_DEC + rf'layers.\1.encoder_attn.{p}_proj.weight' for p in 'qkv')),
    (_LAYER + r'cross_attention\.(?:mha\.)?out_proj\.weight', _DEC + r'layers.\1.encoder_attn.out_proj.weight'),
    (_LAYER + r'norm1\.(weight|bias)', _DEC + r'layers.\1.self_attn_layer_norm.\2'),
    (_LAYER + r'norm_cross\.(weight|bias)', _DEC + r'layers.\1.encoder_attn_layer_norm.\2'),
    (_LAYER + r'norm2\.(weight|bias)', _DEC + r'layers.\1.final_layer_norm.\2'),
    (_LAYER + r'linear1\.weight', _DEC + r'layers.\1.fc1.weight'),
    (_LAYER + r'linear2\.weight', _DEC + r'layers.\1.fc2.weight'),
    (r'out_norm\.(weight|bias)', _DEC + r'layer_norm.\1'),
    (r'linears\.(\d+)\.weight', r'decoder.lm_heads.\1.weight'),
    (rf'condition_provider\.conditioners\.{TEXT_ATTRIBUTE}\.output_proj\.(weight|bias)', r'enc_to_dec_proj.\1'),
]
# Fine-tuned T5 weights also sit in the LM state; the exporter takes the T5 from the conditioner.
SKIPPED = re.compile(rf'condition_provider\.conditioners\.{TEXT_ATTRIBUTE}\.t5\.')


def map_lm_state(state: tp.Dict[str, torch.Tensor]) -> tp.Dict[str, torch.Tensor]:
    """transformers keys -> tensors for every tensor of an AudioCraft LM state (refuses leftovers)."""
    out, unmapped = {}, []
    for key, tensor in state.items():
        if SKIPPED.match(key):
            continue
        for pattern, target in LM_RULES:
            match = re.fullmatch(pattern, key)
            if match is None:
                continue
            if isinstance(target, tuple):      # packed q/k/v projection [3 * D, D] -> three [D, D]
                for name, part in zip(target, tensor.chunk(3, dim=0)):
                    out[match.expand(name)] = part.clone()
            else:
                out[match.expand(target)] = tensor.clone()
            break
        else:
            unmapped.append(key)
    if unmapped:
        raise NotExportable(f"the LM holds tensors transformers' MusicGen has no place for: {unmapped[:8]}")
    return out


def _text_conditioner(model):
    return model.lm.condition_provider.conditioners[TEXT_ATTRIBUTE]


def generation_defaults(cfg: dict, frame_rate: float, n_q: int, card: int, duration: tp.Optional[float] = None,
                        top_k: tp.Optional[int] = None, cfg_coef: tp.Optional[float] = None) -> dict:
    """GenerationConfig arguments: od.generate's defaults, guidance from the model's own config,
    and at most the model's training segment (transformers has no extension loop)."""
    segment = (cfg.get('dataset') or {}).get('segment_duration')
    if duration is None:
        duration = min(DEFAULT_DURATION, float(segment)) if segment else DEFAULT_DURATION
    if cfg_coef is None:
        cfg_coef = float((cfg.get('classifier_free_guidance') or {}).get('inference_coef', DEFAULT_CFG))
    frames = round(duration * frame_rate)
    # transformers' delay pattern: after the start token, the last codebook's first code comes
    # n_q - 1 steps late, so `frames` audio frames take frames + n_q - 1 new tokens. (max_new_tokens,
    # not max_length: with a default max_length transformers generates one frame more.)
    return dict(do_sample=True, top_k=int(top_k or DEFAULT_TOP_K), guidance_scale=float(cfg_coef),
                max_new_tokens=frames + n_q - 1, pad_token_id=card, bos_token_id=card, decoder_start_token_id=card)


def build_hf_model(model, generation: dict):
    """(MusicgenForConditionalGeneration, MusicgenProcessor) holding od's `model` (an ODMusicGen)."""
    from transformers import (
        EncodecFeatureExtractor,
        GenerationConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
    )
    lm = model.lm
    conditioner = _text_conditioner(model)
    t5 = conditioner.t5
    dim, n_q, card = lm.dim, lm.num_codebooks, lm.card
    if t5.config.d_model == dim:
        raise NotExportable(f"its T5 is as wide as the LM ({dim}): transformers' MusicGen then feeds T5 straight "
                            "into cross-attention and has no place for od's output projection")
    try:
        codec = to_hf_encodec(model.compression_model)
    except CodecNotExportable as exc:
        raise NotExportable(f"its compression model cannot be exported: {exc}") from exc
    layer = lm.transformer.layers[0]
    decoder = MusicgenDecoderConfig(
        vocab_size=card, max_position_embeddings=max(2048, generation['max_new_tokens'] + 1),
        num_hidden_layers=len(lm.transformer.layers), ffn_dim=layer.linear1.out_features,
        num_attention_heads=layer.self_attn.num_heads, hidden_size=dim, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, activation_function='gelu', num_codebooks=n_q, audio_channels=1,
        pad_token_id=card, bos_token_id=card, is_decoder=True, add_cross_attention=True)
    config = MusicgenConfig(text_encoder=t5.config.to_dict(), audio_encoder=codec.config.to_dict(),
                            decoder=decoder.to_dict())
    hf = MusicgenForConditionalGeneration(config).eval()
    mapped = map_lm_state(lm.state_dict())
    own = {k: v for k, v in hf.state_dict().items() if k.startswith(('decoder.', 'enc_to_dec_proj.'))}
    missing = sorted(set(own) - set(mapped))
    misshapen = [k for k in mapped if k in own and own[k].shape != mapped[k].shape]
    if missing or misshapen or set(mapped) - set(own):
        raise NotExportable(f"the mapped LM does not fit transformers' MusicGen: missing {missing[:5]}, "
                            f"misshapen {misshapen[:5]}, extra {sorted(set(mapped) - set(own))[:5]}")
    with torch.no_grad():
        hf.load_state_dict(mapped, strict=False)
        hf.text_encoder.load_state_dict(t5.state_dict())
        hf.audio_encoder.load_state_dict(codec.state_dict())
    hf.generation_config = GenerationConfig(**generation)
    processor = MusicgenProcessor(
        feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=int(model.sample_rate),
                                                  padding_value=0.0),
        tokenizer=conditioner.t5_tokenizer)
    return hf, processor, codec


@torch.no_grad()
def compare_logits(model, hf, processor, steps: int = 8, seed: int = 0) -> tp.Dict[str, float]:
    """Max |logit| difference between od's LM and the transformers decoder on the same random codes
    (some the special token), for a prompt and for the null condition of classifier-free guidance."""
    from audiocraft.modules.conditioners import ConditioningAttributes
    lm = model.lm
    device = next(hf.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, lm.card + 1, (1, lm.num_codebooks, steps), generator=generator)    # [B, K, S]
    result = {}
    for label, text in (('prompt', CHECK_PROMPT), ('null', None)):
        attrs = [ConditioningAttributes(text={TEXT_ATTRIBUTE: text})]
        provider = lm.condition_provider
        ours = lm(codes.to(model.device), [], provider(provider.tokenize(attrs)))                 # [B, K, S, card]
        inputs = processor(text=[text or ''], padding=True, return_tensors='pt')
        mask = inputs['attention_mask'] if text is not None else torch.zeros_like(inputs['attention_mask'])
        theirs = hf(input_ids=inputs['input_ids'].to(device), attention_mask=mask.to(device),
                    decoder_input_ids=codes.reshape(-1, steps).to(device)).logits                 # [B * K, S, card]
        theirs = theirs.reshape(ours.shape)
        result[f'max_abs_diff_{label}'] = float((ours.float().cpu() - theirs.float().cpu()).abs().max())
        result[f'logit_scale_{label}'] = float(ours.abs().max())
    return result


def check_tokenizer(model, processor) -> None:
    """The exported tokenizer must give the conditioner's own token ids (transformers 5 can rebuild
    a T5 tokenizer silently wrong offline, see od/conditioners/t5.py)."""
    ours = _text_conditioner(model).t5_tokenizer([CHECK_PROMPT], return_tensors='pt', padding=True)['input_ids']
    theirs = processor(text=[CHECK_PROMPT], return_tensors='pt', padding=True)['input_ids']
    if not torch.equal(ours, theirs):
        raise NotExportable(f"the exported tokenizer gives other token ids ({theirs.tolist()} vs {ours.tolist()})")


def _umask_permissions(folder: Path) -> None:
    """Files as a plain open() would create them (safetensors writes 0600): team folders stay shared."""
    import os
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.iterdir():
        if path.is_file():
            os.chmod(path, 0o666 & ~mask)


def export_transformers(spec: tp.Union[str, Path], out: tp.Union[str, Path], overwrite: bool = False,
                        duration: tp.Optional[float] = None, top_k: tp.Optional[int] = None,
                        cfg_coef: tp.Optional[float] = None, device: str = 'cpu') -> tp.Dict[str, tp.Any]:
    """Write the transformers folder of the model `spec` (any od.inference.load spec) at `out`.

    Returns what `od_export.json` holds (source, the logits check, generation defaults).
    Raises NotExportable / ValueError / FileExistsError before anything is written.
    """
    import datetime

    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    from ..core.atomic import atomic_dir, write_json
    from .loaders import assemble_model, locate_model, read_model_files
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it.")
    path = locate_model(str(spec))
    state, cfg, compression_pkg = read_model_files(path)   # ValueError for truncated / foreign files
    check_exportable(cfg)                                   # before any weight is loaded
    try:
        model = assemble_model(str(spec), path, state, cfg, compression_pkg, device=device)
    except RuntimeError as exc:
        raise ValueError(f"{path} does not load into the model its config describes: {str(exc)[:400]}") from exc
    generation = generation_defaults(cfg, model.frame_rate, model.lm.num_codebooks, model.lm.card,
                                     duration, top_k, cfg_coef)
    hf, processor, codec = build_hf_model(model, generation)
    codec_diff = check_codec(model.compression_model, codec)
    if codec_diff > 1e-4:
        raise NotExportable(f"the converted EnCodec decodes differently (relative difference {codec_diff:.2e})")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        hf.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        _umask_permissions(tmp)
        # What was written is what is checked: reload it as a user would.
        hf_loaded = MusicgenForConditionalGeneration.from_pretrained(tmp).eval()
        processor_loaded = AutoProcessor.from_pretrained(tmp)
        check_tokenizer(model, processor_loaded)
        logits = compare_logits(model, hf_loaded, processor_loaded)
        for label in ('prompt', 'null'):
            if logits[f'max_abs_diff_{label}'] > LOGITS_TOLERANCE * max(1., logits[f'logit_scale_{label}']):
                raise NotExportable(f"transformers' logits differ from od's ({label}): {logits}")
        info = {'source': str(spec), 'resolved': str(path.resolve()),
                'exported_at': datetime.datetime.now().isoformat(timespec='seconds'),
                'text_encoder': str(_text_conditioner(model).name), 'sample_rate': int(model.sample_rate),
                'frame_rate': float(model.frame_rate), 'codec_relative_decode_diff': codec_diff,
                'logits_check': logits, 'generation': generation,
                'duration_s': (generation['max_new_tokens'] - model.lm.num_codebooks + 1) / model.frame_rate}
        write_json(tmp / EXPORT_INFO, info)
    return info
