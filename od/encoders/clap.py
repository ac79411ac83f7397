"""LAION-CLAP (the `laion-clap` package), loaded offline: audio and text embeddings at 48 kHz.

`name` says where the model comes from:
  - a laion_clap checkpoint file name such as `music_audioset_epoch_15_esc_90.14.pt` (the
    default): looked up in `<reference_dir>/lukewys/laion_clap/` then the HF cache
    (`lukewys/laion_clap`); its architecture is read from the weights;
  - a path (or `//reference/...`) to such a `.pt` file;
  - a folder holding `clap_config.json` + `clap_model.pt` + `roberta/` (the format
    `od.inference.tiny.write_tiny_clap` writes for tests).
laion-clap checkpoints hold the whole RoBERTa text tower, so od needs only roberta-base's
*tokenizer and config* (`config.json`, `vocab.json`, `merges.txt`: `<reference_dir>/roberta-base/`
or the HF cache), never its weights. laion_clap itself would download both: its
`CLAP.__init__` calls `RobertaModel.from_pretrained('roberta-base')` and its `training.data`
module builds three tokenizers at import time. od therefore imports only `clap_module` and
builds the text tower from the config (see `_laion_builders`); nothing is downloaded.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import logging
import sys
import typing as tp
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.environment import MissingWeightsError, hf_cached, missing_weights, reference_dir, resolve_reference

# With laion-clap installed, `import audiocraft.metrics` (and so audiocraft's solvers and data
# modules) imports laion_clap, whose training.data builds three tokenizers at import time: online
# that retries the hub for minutes. od's commands are offline before that (od.core.environment.setup).
logger = logging.getLogger(__name__)

CLAP_REPO = 'lukewys/laion_clap'
DEFAULT_CLAP = 'music_audioset_epoch_15_esc_90.14.pt'
ROBERTA_REPOS = ('roberta-base', 'FacebookAI/roberta-base')
ROBERTA_FILES = ('config.json', 'vocab.json', 'merges.txt')
CLAP_CONFIG = 'clap_config.json'
CLAP_WEIGHTS = 'clap_model.pt'
SAMPLE_RATE = 48000
MAX_TEXT_TOKENS = 77  # what laion-clap was trained with


@dataclasses.dataclass
class ClapEncoder:
    """A frozen CLAP model. Embeddings are L2-normalised, so a dot product is a cosine."""
    model: torch.nn.Module
    tokenizer: tp.Any
    dim: int
    tag: str  # identifies model + weights, part of cache keys
    clip_samples: int = 10 * SAMPLE_RATE
    sample_rate: int = SAMPLE_RATE

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def _embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """[N, S] windows of at most `clip_samples` -> [N, D] (laion's int16 rounding, repeat-pad)."""
        x = (windows.float().clamp(-1, 1) * 32767.).to(torch.int16).float() / 32767.
        if x.shape[-1] < self.clip_samples:  # laion's 'repeatpad': tile the clip, then zero-pad
            x = x.repeat(1, self.clip_samples // max(1, x.shape[-1]))
            x = F.pad(x, (0, self.clip_samples - x.shape[-1]))
        inputs = {'waveform': x.to(self.device), 'longer': torch.zeros(len(x), dtype=torch.bool, device=self.device)}
        out = self.model.audio_branch(inputs, device=self.device)['embedding']
        return F.normalize(self.model.audio_projection(out), dim=-1).float().cpu()

    def window_starts(self, seconds: float, window: float = 10., stride: tp.Optional[float] = None) -> tp.List[float]:
        """Starts (s) of the `window`-s windows every `stride` s (default: no overlap) covering
        `seconds` of audio: one for a clip shorter than a window; a last partial window is
        added when the regular ones leave at least half a window uncovered."""
        stride = stride or window
        if seconds <= window:
            return [0.]
        starts = list(np.arange(0., seconds - window + 1e-6, stride))
        if seconds - (starts[-1] + window) >= window / 2:
            starts.append(seconds - window)
        return [float(s) for s in starts]

    def embed_at(self, wav: torch.Tensor, starts: tp.Sequence[float], window: float = 10.,
                 batch_size: int = 8) -> torch.Tensor:
        """[T] mono 48 kHz audio -> [len(starts), D]: the windows `[start, start + window)`;
        windows cut short by the end of the audio are repeat-padded like laion_clap does."""
        size = int(window * self.sample_rate)
        if size > self.clip_samples:
            raise ValueError(f"window {window} s is longer than the model's {self.clip_samples / self.sample_rate} s")
        chunks = [wav[int(s * self.sample_rate):int(s * self.sample_rate) + size] for s in starts]
        chunks = [c if len(c) else wav[-1:] for c in chunks]  # a start past the end: its last sample
        out = torch.zeros(len(chunks), self.dim)
        full = [i for i, c in enumerate(chunks) if len(c) == size]
        for i in range(0, len(full), batch_size):
            index = full[i:i + batch_size]
            out[index] = self._embed_windows(torch.stack([chunks[j] for j in index]))
        for i, chunk in enumerate(chunks):
            if len(chunk) != size:
                out[i] = self._embed_windows(chunk[None])[0]
        return out

    def embed_windows(self, wav: torch.Tensor, window: float = 10., stride: tp.Optional[float] = None) -> torch.Tensor:
        """[T] mono 48 kHz audio -> [N, D] one embedding per window (see `window_starts`)."""
        return self.embed_at(wav, self.window_starts(wav.shape[-1] / self.sample_rate, window, stride), window)

    def embed_audio(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, T] mono 48 kHz -> [B, D]. Rows longer than 10 s: the mean of their 10-s windows."""
        if wav.dim() == 1:
            wav = wav[None]
        if wav.shape[-1] <= self.clip_samples:
            return self._embed_windows(wav)
        return torch.stack([F.normalize(self.embed_windows(row).mean(0), dim=-1) for row in wav])

    @torch.no_grad()
    def embed_text(self, texts: tp.Sequence[str]) -> torch.Tensor:
        """list of B strings -> [B, D]."""
        tokens = self.tokenizer(list(texts), padding='max_length', truncation=True,
                                max_length=MAX_TEXT_TOKENS, return_tensors='pt')
        data = {'input_ids': tokens['input_ids'], 'attention_mask': tokens['attention_mask']}
        return self.model.get_text_embedding(data).float().cpu()


# ---- where the files are -----------------------------------------------------------------
def _roberta_folder() -> Path:
    """roberta-base's tokenizer + config: reference folder first, then the HF cache."""
    for repo in ROBERTA_REPOS:
        folder = reference_dir() / repo
        if all((folder / f).exists() for f in ROBERTA_FILES):
            return folder
        cached = hf_cached(repo, required=ROBERTA_FILES)
        if cached is not None:
            return cached
    error = missing_weights(ROBERTA_REPOS[0], ROBERTA_FILES)
    return_note = "\n  (CLAP needs only roberta-base's tokenizer and config: its text weights are in the CLAP checkpoint.)"
    raise MissingWeightsError(str(error) + return_note)


def locate_clap(name: tp.Optional[str] = None) -> tp.Tuple[Path, Path]:
    """(weights file, roberta tokenizer folder) for `name`, or MissingWeightsError."""
    name = str(name or DEFAULT_CLAP)
    local = resolve_reference(name)
    if local.is_dir():
        missing = [f for f in (CLAP_CONFIG, CLAP_WEIGHTS) if not (local / f).exists()]
        missing += [f'roberta/{f}' for f in ROBERTA_FILES if not (local / 'roberta' / f).exists()]
        if missing:
            raise MissingWeightsError(f"CLAP folder {local} lacks {', '.join(missing)} "
                                      "(od's CLAP folder format, see od.inference.tiny.write_tiny_clap).")
        return local / CLAP_WEIGHTS, local / 'roberta'
    if local.is_file():
        return local, _roberta_folder()
    if '/' in name or name.startswith('//') or not name.endswith('.pt'):
        raise MissingWeightsError(f"CLAP weights not found: {local} (from {name}). Give a laion_clap "
                                  f"checkpoint file, a name such as {DEFAULT_CLAP}, or an od CLAP folder.")
    ref = reference_dir() / CLAP_REPO / name
    if ref.is_file():
        return ref, _roberta_folder()
    cached = hf_cached(CLAP_REPO, required=(name,))
    if cached is not None:
        return cached / name, _roberta_folder()
    raise missing_weights(CLAP_REPO, [name])


# ---- building the model ------------------------------------------------------------------
def laion_clap_module():
    """laion_clap's model code without `laion_clap/__init__` (which downloads tokenizers)."""
    if 'clap_module' not in sys.modules:
        spec = importlib.util.find_spec('laion_clap')
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("laion-clap is not installed: run ./install.sh (requirements-nodeps.txt)")
        folder = list(spec.submodule_search_locations)[0]
        if folder not in sys.path:
            sys.path.append(folder)  # laion's modules import `clap_module` top-level (od/conditioners/hooks.py)
    return importlib.import_module('clap_module')


@contextlib.contextmanager
def _laion_builders(roberta: Path, htsat: tp.Optional[dict]):
    """While laion's CLAP is built: RoBERTa from `roberta/config.json` (random, the checkpoint
    overwrites it) instead of a hub download; optionally an HTSAT of custom size (tiny models)."""
    from transformers import RobertaConfig, RobertaModel
    model_module = laion_clap_module().model

    class _FromConfig:
        @staticmethod
        def from_pretrained(_name, *args, **kwargs):
            return RobertaModel(RobertaConfig.from_pretrained(str(roberta)))

    saved = model_module.RobertaModel, model_module.create_htsat_model
    model_module.RobertaModel = _FromConfig
    if htsat is not None:
        from clap_module.htsat import HTSAT_Swin_Transformer

        def create_htsat_model(audio_cfg, enable_fusion=False, fusion_type='None'):
            return HTSAT_Swin_Transformer(spec_size=256, patch_size=4, patch_stride=(4, 4),
                                          num_classes=audio_cfg.class_num, window_size=8, config=audio_cfg,
                                          enable_fusion=enable_fusion, fusion_type=fusion_type, **htsat)
        model_module.create_htsat_model = create_htsat_model
    try:
        yield
    finally:
        model_module.RobertaModel, model_module.create_htsat_model = saved


def _read_checkpoint(path: Path) -> tp.Dict[str, torch.Tensor]:
    """The state dict of a laion_clap checkpoint, read without running code from it.

    laion's training script saves `{'epoch', 'name', 'state_dict', 'optimizer', ...}`: plain
    data, plus possibly numpy scalars, which are allow-listed (rebuilding one runs no code).
    Anything else is refused (UnsafeFileError) with the way to convert a trusted file once
    (`python -m od.trust <file>`); there is no fallback to full unpickling.
    """
    from ..core.safe_load import torch_load
    try:
        data = torch_load(path, 'CLAP checkpoint', allow_numpy=True)
    except ValueError as exc:
        raise MissingWeightsError(str(exc)) from None
    state = data.get('state_dict', data) if isinstance(data, dict) else data
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MissingWeightsError(f"{path} is not a CLAP checkpoint: it holds no state dict of tensors.")
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def _config_from_weights(state: tp.Dict[str, torch.Tensor], clap_module) -> dict:
    """laion's model config for a released checkpoint, recognised from its tensor shapes."""
    if any('fusion_model' in k for k in state):
        raise MissingWeightsError("fusion CLAP checkpoints (630k-*fusion*) are not supported: use a "
                                  f"non-fusion one such as {DEFAULT_CLAP}.")
    patch = state.get('audio_branch.patch_embed.proj.weight')
    sizes = {96: 'HTSAT-tiny', 128: 'HTSAT-base', 256: 'HTSAT-large'}
    if patch is not None and patch.shape[0] in sizes:
        amodel = sizes[patch.shape[0]]
    elif 'audio_branch.conv_block6.conv1.weight' in state:
        amodel = 'PANN-14'
    else:
        raise MissingWeightsError("not a laion_clap checkpoint od recognises (HTSAT tiny/base/large or PANN-14)")
    cfg = json.loads(json.dumps(clap_module.factory._MODEL_CONFIGS[amodel]))  # a deep copy
    cfg['text_cfg']['model_type'] = 'roberta'
    cfg['joint_embed_shape'] = int(state['audio_projection.0.weight'].shape[0])
    return cfg


def _check_tokenizer(tokenizer, roberta: Path) -> None:
    """transformers 5 offline can return a 5-token RoBERTa tokenizer instead of failing."""
    expected = json.loads((roberta / 'config.json').read_text())['vocab_size']
    if len(tokenizer) != expected:
        raise MissingWeightsError(f"RoBERTa tokenizer in {roberta} has {len(tokenizer)} tokens, its config says "
                                  f"{expected}: vocab.json/merges.txt are missing or broken there.")


def load_clap(name: tp.Optional[str] = None, device: tp.Union[str, torch.device] = 'cpu') -> ClapEncoder:
    """A frozen laion-clap model from local files only (see the module docstring for `name`)."""
    from transformers import AutoTokenizer

    weights, roberta = locate_clap(name)
    clap_module = laion_clap_module()
    state = _read_checkpoint(weights)
    od_config = json.loads((weights.parent / CLAP_CONFIG).read_text()) if weights.name == CLAP_WEIGHTS else {}
    cfg = od_config.get('model_cfg') or _config_from_weights(state, clap_module)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(roberta), local_files_only=True)
    except Exception as exc:  # a vocab.json that lost its entries fails inside `tokenizers`
        raise MissingWeightsError(f"RoBERTa tokenizer in {roberta} cannot be built ({exc}): "
                                  f"vocab.json/merges.txt are missing or broken there.") from exc
    _check_tokenizer(tokenizer, roberta)
    with _laion_builders(roberta, od_config.get('htsat')):
        model = clap_module.model.CLAP(**cfg)
    # position_ids is a buffer newer transformers no longer saves (laion_clap drops it too).
    state = {k: v for k, v in state.items() if not k.endswith('embeddings.position_ids')}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('position_ids')]
    if missing or unexpected:
        raise MissingWeightsError(f"{weights} does not match the CLAP it describes: missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]}")
    model = model.to(device).eval().requires_grad_(False)
    digest = hashlib.sha1(f"{weights.resolve()}:{weights.stat().st_size}".encode()).hexdigest()[:8]
    stem = weights.parent.name if weights.name == CLAP_WEIGHTS else weights.stem
    return ClapEncoder(model=model, tokenizer=tokenizer, dim=int(cfg.get('joint_embed_shape', 512)),
                       tag=f"clap-{stem}-{digest}", clip_samples=int(cfg['audio_cfg']['clip_samples']))


_LOADED: tp.Dict[tp.Tuple[str, str], ClapEncoder] = {}


def get_clap(model: tp.Union[None, str, ClapEncoder] = None, device: str = 'cpu') -> ClapEncoder:
    """`model` itself when it is loaded, else the (process-wide cached) model of that name."""
    if isinstance(model, ClapEncoder):
        return model
    key = (str(model or DEFAULT_CLAP), str(device))
    if key not in _LOADED:
        _LOADED[key] = load_clap(model, device)
    return _LOADED[key]


# ---- audio files -------------------------------------------------------------------------
def read_audio(path: tp.Union[str, Path], start: float = 0., duration: tp.Optional[float] = None,
               sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """[T] mono float audio of `path` from `start` for `duration` s (all when None) at `sample_rate`.

    Raises ValueError naming the file when it cannot be read or holds no audio."""
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    try:
        wav, sr = audio_read(path, seek_time=start, duration=-1. if duration is None else duration)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read audio ({type(exc).__name__}: {exc})") from exc
    if wav.numel() == 0:
        raise ValueError(f"{path}: no audio from {start:.2f} s")
    if not torch.isfinite(wav).all():  # one NaN makes the embedding, and a FAD over the set, NaN
        raise ValueError(f"{path}: {int((~torch.isfinite(wav)).sum())} NaN/Inf samples")
    return convert_audio(wav, sr, sample_rate, 1)[0]


def embed_audio_files(paths: tp.Sequence[tp.Union[str, Path]], model: tp.Union[None, str, ClapEncoder] = None,
                      window: float = 10., stride: tp.Optional[float] = None, progress: bool = True,
                      return_used: bool = False) -> tp.Any:
    """[N, D] per-file embedding (mean of its window embeddings, re-normalised) of readable files.

    Unreadable files are reported by name, skipped and counted. With `return_used`, returns
    `(embeddings, used_paths)` so callers know which rows are which files.
    """
    from tqdm import tqdm

    encoder = get_clap(model)
    rows, used, failed = [], [], []
    for path in tqdm(list(paths), desc='CLAP embeddings', disable=not progress, unit='file'):
        try:
            wav = read_audio(path)
        except ValueError as exc:
            logger.warning("Skipping %s", exc)
            failed.append(str(path))
            continue
        rows.append(F.normalize(encoder.embed_windows(wav, window, stride).mean(0), dim=-1).numpy())
        used.append(str(path))
    if failed:
        logger.warning("CLAP: skipped %d of %d files that could not be read (first: %s)",
                       len(failed), len(failed) + len(used), failed[0])
    out = np.stack(rows) if rows else np.zeros((0, encoder.dim), np.float32)
    return (out, used) if return_used else out
