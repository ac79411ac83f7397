"""Tiny randomly initialised models saved in the same formats as real weights.

Tests (and CPU smoke runs) load these through exactly the code real weights go through; only
the folder differs. Nothing here downloads anything. From the shell:

    python -m od.tiny clip checkpoints/tiny-clip     # then ...clip_frames.name=checkpoints/tiny-clip
    python -m od.tiny t5 checkpoints/tiny-t5         # ...t5_ti.name= / ...t5.name=
    python -m od.tiny clap checkpoints/tiny-clap     # ...clap_audio.name=
    python -m od.tiny hub ~/od-tiny-hf               # then HF_HOME=~/od-tiny-hf python -m od.pipeline ...

`hub` writes a Hugging Face home whose hub cache holds tiny random models under the real repo
ids and file layouts that od's default commands load (see `HUB_REPOS`): the real-scale path of
`od.pipeline` runs on it unchanged, only the weights are tiny.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

DEFAULT_CORPUS = [
    'an upbeat chiptune track with square leads', 'a calm ambient piece with soft pads',
    'driving drums with a saw bass line', 'warm plucked strings over a gentle pad',
    'energetic rock with distorted guitars', 'a sad piano ballad in a minor key',
]


def write_tiny_t5(folder: tp.Union[str, Path], corpus: tp.Sequence[str] = DEFAULT_CORPUS,
                  vocab_size: int = 96, d_model: int = 32, seed: int = 0) -> Path:
    """A T5 encoder (2 layers, `d_model` wide) with its own SentencePiece model, HF layout."""
    import io

    import sentencepiece as spm
    import torch
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(corpus) * 20), model_writer=model_proto, vocab_size=vocab_size,
        model_type='unigram', pad_id=0, eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False,
        minloglevel=2)
    (folder / 'spiece.model').write_bytes(model_proto.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model_proto.getvalue())
    # transformers 5's T5Tokenizer takes the pieces themselves (it ignores a vocab_file).
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    assert len(tokenizer) == sp.get_piece_size(), "tokenizer lost pieces"
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=8, d_ff=2 * d_model,
                      num_layers=2, num_heads=4, decoder_start_token_id=0)
    T5EncoderModel(config).save_pretrained(folder)
    return folder


def _save_open_clip(folder: tp.Union[str, Path], model_cfg: dict, preprocess_cfg: dict, model) -> Path:
    """`model` in open_clip's hub format: open_clip_config.json + safetensors weights."""
    import json

    from safetensors.torch import save_file

    from ..encoders.clip import CLIP_CONFIG, CLIP_WEIGHTS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CLIP_CONFIG).write_text(json.dumps({'model_cfg': model_cfg, 'preprocess_cfg': preprocess_cfg}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / CLIP_WEIGHTS[0]))
    return folder


def write_tiny_clip(folder: tp.Union[str, Path], embed_dim: int = 32, image_size: int = 32,
                    seed: int = 0) -> Path:
    """A randomly initialised ViT CLIP in open_clip's hub format (config + safetensors)."""
    import open_clip
    import torch

    model_cfg = {'embed_dim': embed_dim,
                 'vision_cfg': {'image_size': image_size, 'layers': 2, 'width': 64, 'patch_size': 8},
                 'text_cfg': {'context_length': 16, 'vocab_size': 1000, 'width': 32, 'heads': 2, 'layers': 1}}
    torch.manual_seed(seed)
    return _save_open_clip(folder, model_cfg, {'mean': [0.48145466, 0.4578275, 0.40821073],
                                               'std': [0.26862954, 0.26130258, 0.27577711]},
                           open_clip.CLIP(**model_cfg))


def write_random_clip(folder: tp.Union[str, Path], arch: str = 'ViT-B-32', seed: int = 0) -> Path:
    """A randomly initialised open_clip `arch` in hub format: real compute cost, no real weights
    (for benchmarks on machines without the pretrained files)."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    return _save_open_clip(folder, open_clip.get_model_config(arch), {},
                           open_clip.create_model(arch, pretrained=None))


def write_tiny_roberta_tokenizer(folder: tp.Union[str, Path], corpus: tp.Sequence[str] = DEFAULT_CORPUS,
                                 vocab_size: int = 300) -> Path:
    """A byte-level BPE tokenizer in roberta-base's file format (vocab.json + merges.txt)."""
    from tokenizers import ByteLevelBPETokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(corpus) * 20, vocab_size=vocab_size, min_frequency=1,
                            special_tokens=['<s>', '<pad>', '</s>', '<unk>', '<mask>'], show_progress=False)
    bpe.save_model(str(folder))
    return folder


def write_tiny_clap(folder: tp.Union[str, Path], dim: int = 32, seed: int = 0) -> Path:
    """A randomly initialised laion-clap CLAP in od's CLAP folder format (see od.encoders.clap):
    a small HTSAT audio tower, a 1-layer RoBERTa text tower and its own tiny tokenizer."""
    import json

    import torch
    from transformers import AutoTokenizer, RobertaConfig

    from ..encoders import clap

    folder = Path(folder)
    roberta = write_tiny_roberta_tokenizer(folder / 'roberta')
    # laion_clap's text projection expects 768-wide RoBERTa outputs; depth and MLP stay tiny.
    vocab = len(json.loads((roberta / 'vocab.json').read_text()))
    RobertaConfig(vocab_size=vocab, hidden_size=768, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=clap.MAX_TEXT_TOKENS + 3, type_vocab_size=1,
                  pad_token_id=1, bos_token_id=0, eos_token_id=2).save_pretrained(roberta)
    assert len(AutoTokenizer.from_pretrained(str(roberta))) == vocab, "tiny tokenizer lost tokens"
    htsat = {'embed_dim': 16, 'depths': [1, 1, 1, 1], 'num_heads': [1, 1, 2, 2]}
    model_cfg = {
        'embed_dim': htsat['embed_dim'] * 8,  # HTSAT's output width: embed_dim * 2 ** (stages - 1)
        'audio_cfg': {'audio_length': 1024, 'clip_samples': 10 * clap.SAMPLE_RATE, 'mel_bins': 64,
                      'sample_rate': clap.SAMPLE_RATE, 'window_size': 1024, 'hop_size': 480, 'fmin': 50,
                      'fmax': 14000, 'class_num': 8, 'model_type': 'HTSAT', 'model_name': 'tiny'},
        'text_cfg': {'context_length': clap.MAX_TEXT_TOKENS, 'vocab_size': vocab, 'width': 768, 'heads': 2,
                     'layers': 1, 'model_type': 'roberta'},
        'joint_embed_shape': dim}
    torch.manual_seed(seed)
    with clap._laion_builders(roberta, htsat):
        model = clap.laion_clap_module().model.CLAP(**model_cfg)
    (folder / clap.CLAP_CONFIG).write_text(json.dumps({'model_cfg': model_cfg, 'htsat': htsat}, indent=1))
    torch.save(model.state_dict(), folder / clap.CLAP_WEIGHTS)
    return folder


# ---- a Hugging Face cache of tiny models under the real repo ids ----------------------------------
HUB_REVISION = 'f' * 40   # the snapshot folder (a commit hash in a real cache)
ENCODEC_REPO = 'facebook/encodec_32khz'
T5_REPO = 't5-base'
CLIP_REPO = 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K'
# MusicGen scale -> tiny LM shape (two scales are two architectures, as upstream's are; each
# wider than the tiny T5, as upstream's LMs are wider than t5-base, so the text projection
# exists); the codebooks are those of the tiny EnCodec (4 x 64 codes).
TINY_LM = {'small': {'dim': 48, 'num_heads': 2, 'num_layers': 2},
           'medium': {'dim': 64, 'num_heads': 4, 'num_layers': 3},
           'large': {'dim': 96, 'num_heads': 4, 'num_layers': 3}}
TINY_CARD = 64


def hub_snapshot(hub_cache: tp.Union[str, Path], repo_id: str, revision: str = HUB_REVISION) -> Path:
    """An empty snapshot folder of `repo_id` in Hugging Face cache layout (refs/main set)."""
    repo = Path(hub_cache) / f"models--{repo_id.replace('/', '--')}"
    (repo / 'refs').mkdir(parents=True, exist_ok=True)
    (repo / 'refs' / 'main').write_text(revision)
    (repo / 'snapshots' / revision).mkdir(parents=True, exist_ok=True)
    return repo / 'snapshots' / revision


def write_tiny_hf_encodec(folder: tp.Union[str, Path], seed: int = 0) -> Path:
    """A randomly initialised 32 kHz EnCodec in transformers' format (facebook/encodec_32khz's
    files): 50 frames/s, 4 codebooks of `TINY_CARD` codes at its top bandwidth."""
    import torch
    from transformers import EncodecConfig, EncodecModel
    config = EncodecConfig(target_bandwidths=[0.6, 1.2], sampling_rate=32000, audio_channels=1,
                           num_filters=4, upsampling_ratios=[8, 5, 4, 4], codebook_size=TINY_CARD,
                           codebook_dim=16, hidden_size=16, num_lstm_layers=1, normalize=False)
    torch.manual_seed(seed)
    model = EncodecModel(config)
    with torch.no_grad():  # transformers starts codebooks at zero (k-means fills them in training):
        for layer in model.quantizer.layers:  # random codes, so each code decodes to its own sound
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    model.save_pretrained(folder)
    return Path(folder)


def write_tiny_musicgen(folder: tp.Union[str, Path], t5_folder: tp.Union[str, Path], scale: str = 'small',
                        seed: int = 0) -> Path:
    """facebook/musicgen-<scale>'s files with a tiny random LM: AudioCraft's export format
    (`state_dict.bin`: best_state + xp.cfg, T5 `t5-base` text conditioner) and a
    `compression_state_dict.bin` that names `facebook/encodec_32khz`, as upstream's does.
    `t5_folder`: the tiny t5-base the LM's text projection is built against."""
    import torch
    from omegaconf import OmegaConf

    from ..core.environment import compose_config
    from .loaders import new_lm
    shape = TINY_LM[scale]
    cfg = compose_config(['solver=musicgen/musicgen_base_32khz', f'model/lm/model_scale={scale}',
                         'conditioner=text2music', f'transformer_lm.card={TINY_CARD}']
                        + [f'transformer_lm.{k}={v}' for k, v in shape.items()])
    cfg.device = 'cpu'
    built = cfg.copy()
    built.conditioners.description.t5.name = str(t5_folder)  # the file names t5-base, as upstream's
    lm = new_lm(built, seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({'best_state': lm.state_dict(), 'xp.cfg': OmegaConf.to_yaml(cfg), 'exported': True},
               folder / 'state_dict.bin')
    torch.save({'pretrained': ENCODEC_REPO, 'exported': True}, folder / 'compression_state_dict.bin')
    return folder


def write_tiny_hub(hf_home: tp.Union[str, Path], scales: tp.Sequence[str] = ('small', 'medium'),
                   seed: int = 0) -> Path:
    """A Hugging Face home (`<hf_home>/hub`) holding tiny random models under the repo ids od
    loads by default: facebook/musicgen-<scale>, facebook/encodec_32khz, t5-base and CLIP
    ViT-B-32 (laion2B). Returns `hf_home`; use it with HF_HOME=<hf_home> HF_HUB_OFFLINE=1.

    LAION-CLAP's checkpoint (the CLAP metrics) and VGGish (the FAD metric) are not written:
    their files fix the full-size architecture, so no tiny model can take their format; od
    reports those metrics as skipped, naming the files."""
    hub = Path(hf_home) / 'hub'
    write_tiny_hf_encodec(hub_snapshot(hub, ENCODEC_REPO), seed=seed)
    t5 = write_tiny_t5(hub_snapshot(hub, T5_REPO), seed=seed)
    write_tiny_clip(hub_snapshot(hub, CLIP_REPO), seed=seed)
    for scale in scales:
        write_tiny_musicgen(hub_snapshot(hub, f'facebook/musicgen-{scale}'), t5, scale, seed=seed)
    return Path(hf_home)


# kind -> (writer, the override that points a run at the folder, what it stands in for)
KINDS: tp.Dict[str, tp.Tuple[tp.Callable[..., Path], str, str]] = {
    'clip': (write_tiny_clip, 'conditioners.self_wav.clip_frames.name={folder}', 'a CLIP image tower (32-d)'),
    'random-clip': (write_random_clip, 'conditioners.self_wav.clip_frames.name={folder}',
                    'ViT-B-32 at full size, random weights (benchmarks)'),
    't5': (write_tiny_t5, 'conditioners.description.t5_ti.name={folder} (or conditioners.description.t5.name=)',
           'a T5 encoder with its own tokenizer (32-d)'),
    'clap': (write_tiny_clap, 'conditioners.self_wav.clap_audio.name={folder}', 'a LAION-CLAP model (32-d)'),
    'hub': (write_tiny_hub, 'HF_HOME={folder} (e.g. HF_HOME={folder} python -m od.pipeline ~/my_videos --name try)',
            'a Hugging Face home: MusicGen small+medium, EnCodec 32 kHz, t5-base, CLIP ViT-B-32 (real ids)'),
}
