"""Encoders for the embedding-space analysis: name -> one function that embeds one file.

An adapter is a factory `(arg, context) -> Encoder`, registered with `@register_encoder(name)`;
on the command line `--encoders clip,mel,npy=results/openl3` picks them (`name` or `name=arg`,
`arg` being the adapter's main setting: which model, or where precomputed vectors lie). An
`Encoder` says which file suffixes it reads and maps one file to `[D]` or `[T, D]` (frames or
windows; the analysis mean-pools them). A file it cannot read raises; the caller reports it and
moves on. Python users may also pass their own `Encoder` objects to `analyse()`.

Built in: `clip` (images, and videos through od's frame-embedding cache), `clap` (LAION-CLAP
audio), `vggish` (VGGish in od's separate TensorFlow env), `mel` (log-mel statistics, a
weight-free baseline), `npy` (precomputed vectors, any encoder), `cond` (the condition tokens
of a trained od model's conditioner, see `od/analysis/condition.py`), `midi` (symbolic features
of MIDI files, weight-free, see `od/analysis/midi.py`).
"""
from __future__ import annotations

import dataclasses
import typing as tp
from pathlib import Path

import numpy as np

from ..data.formats import MIDI_EXTS  # noqa: E402,F401  (the `midi` encoder, od/analysis/midi.py)
from ..data.frames import IMAGE_EXTS, VIDEO_EXTS
from ..data.manifest import AUDIO_EXTS

MEDIA_EXTS = tuple(AUDIO_EXTS) + VIDEO_EXTS + IMAGE_EXTS + ('.npy',) + MIDI_EXTS


@dataclasses.dataclass
class EncoderContext:
    """What every adapter may need besides its own argument."""
    root: Path                              # dataset root (<root>/<category>/<files>)
    device: str = 'cpu'
    cache_dir: tp.Optional[Path] = None     # None: od's default cache places (next to the media)
    use_cache: bool = True
    fps: float = 1.0                        # video frames per second embedded (then mean-pooled)
    options: tp.Dict[str, str] = dataclasses.field(default_factory=dict)  # '<encoder>.<key>' -> value
    progress: bool = True


@dataclasses.dataclass
class Encoder:
    name: str                                  # label in results: file names, legends, metrics keys
    exts: tp.Tuple[str, ...]                   # lower-case suffixes it reads
    embed: tp.Callable[[Path], np.ndarray]     # one file -> [D] or [T, D]
    # Batch encoders (e.g. VGGish through a Beam pipeline) run once over all their files first.
    prepare: tp.Optional[tp.Callable[[tp.Sequence[Path]], None]] = None

    def accepts(self, path: Path) -> bool:
        return path.suffix.lower() in self.exts


EncoderFactory = tp.Callable[[tp.Optional[str], EncoderContext], Encoder]
ENCODERS: tp.Dict[str, EncoderFactory] = {}


def register_encoder(name: str) -> tp.Callable[[EncoderFactory], EncoderFactory]:
    def wrap(factory: EncoderFactory) -> EncoderFactory:
        ENCODERS[name] = factory
        return factory
    return wrap


def build_encoder(spec: str, context: EncoderContext) -> Encoder:
    """`name` or `name=arg` -> a ready Encoder (weights loaded)."""
    name, _, arg = spec.strip().partition('=')
    if name not in ENCODERS:
        raise ValueError(f"Unknown encoder '{name}' (in '{spec}'); available: {', '.join(sorted(ENCODERS))}.")
    return ENCODERS[name](arg or None, context)


def pooled(vectors: np.ndarray, path: Path) -> np.ndarray:
    """[D] or [T, D] -> [D] float64 (mean over T); ValueError for empty or non-finite output."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim == 2:
        if len(vectors) == 0:
            raise ValueError(f"{path}: the encoder returned no frames")
        vectors = vectors.mean(0)
    if vectors.ndim != 1 or vectors.size == 0:
        raise ValueError(f"{path}: expected a [D] or [T, D] embedding, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError(f"{path}: the embedding has NaN or infinite values")
    return vectors


@register_encoder('npy')
def npy_encoder(arg: tp.Optional[str], context: EncoderContext) -> Encoder:
    """Precomputed vectors. `npy`: the dataset's own `.npy` files; `npy=<dir>`: for each dataset
    file `<root>/<category>/<stem>.<ext>`, the vector `<dir>/<category>/<stem>.npy`."""
    if arg is None:
        return Encoder('npy', ('.npy',), lambda path: np.load(path, allow_pickle=False))
    folder = Path(arg)
    if not folder.is_dir():
        raise FileNotFoundError(f"Precomputed embeddings folder not found: {folder} (from npy={arg}).")

    def embed(path: Path) -> np.ndarray:
        vector = folder / path.relative_to(context.root).with_suffix('.npy')
        if not vector.exists():
            raise FileNotFoundError(f"no precomputed embedding {vector}")
        return np.load(vector, allow_pickle=False)
    return Encoder(f'npy-{folder.name}', MEDIA_EXTS, embed)


@register_encoder('clip')
def clip_encoder(arg: tp.Optional[str], context: EncoderContext) -> Encoder:
    """CLIP image tower (`clip=<name>`, see od.encoders.clip; `clip.pretrained` option for a weights
    file): an image gives one vector, a video the mean of its frames at `fps`, cached like the
    clip_frames conditioner's (same key for the same CLIP and rate, so `od.prep` fills it too)."""
    from ..data.cache import EmbeddingCache
    from ..data.frames import read_image
    from ..encoders.clip import DEFAULT_CLIP, load_image_encoder

    clip = load_image_encoder(arg or DEFAULT_CLIP, context.options.get('clip.pretrained'), context.device)
    cache = EmbeddingCache(clip.tag, context.fps, context.cache_dir) if context.use_cache else None

    def embed(path: Path) -> np.ndarray:
        if path.suffix.lower() in IMAGE_EXTS:
            return clip.encode(read_image(path), context.device).numpy()              # [1, D]
        return clip.embed_video(path, context.fps, cache, context.device).numpy()     # [N, D]
    return Encoder('clip', IMAGE_EXTS + VIDEO_EXTS, embed)


@register_encoder('mel')
def mel_encoder(arg: tp.Optional[str], context: EncoderContext) -> Encoder:
    """Mean and standard deviation of a 64-band log-mel spectrogram at 16 kHz (`mel=<bands>`):
    no weights, a baseline any learned space should beat."""
    from ..metrics.audio_features import log_mel_stats

    n_mels = int(arg or 64)

    def embed(path: Path) -> np.ndarray:
        return log_mel_stats(path, n_mels)                               # [2 * n_mels]
    return Encoder('mel' if arg is None else f'mel{n_mels}', tuple(AUDIO_EXTS), embed)



@register_encoder('clap')
def clap_encoder(arg: tp.Optional[str], context: EncoderContext) -> Encoder:
    """LAION-CLAP's audio tower (`clap=<name>`, see od.encoders.clap): per file the embedding od's
    CLAP metrics use (mean of its 10-s windows, re-normalised)."""
    from ..encoders.clap import embed_audio_files, load_clap, read_audio

    model = load_clap(arg, context.device)

    def embed(path: Path) -> np.ndarray:
        vectors, used = embed_audio_files([path], model, progress=False, return_used=True)
        if not used:
            read_audio(path)  # raises the ValueError that says why
            raise ValueError(f"{path}: CLAP could not embed it")
        return vectors[0]                                                    # [D]
    return Encoder('clap', tuple(AUDIO_EXTS), embed)


@register_encoder('vggish')
def vggish_encoder(arg: tp.Optional[str], context: EncoderContext) -> Encoder:
    """VGGish run by od's separate TensorFlow env (`make fad-env`; `vggish=<checkpoint>`, default
    //reference/fad/vggish_model.ckpt): one Beam run embeds all files (`vggish.workers` processes,
    default 2), then each file is the mean of its 0.96-s examples' 128-d embeddings. Files VGGish
    fails on are reported by it."""
    import tempfile

    from ..metrics import vggish

    checkpoint = vggish.check_fad_vggish(arg)  # the TF env and the weights, before any work
    workdir = tempfile.TemporaryDirectory(prefix='od-vggish-')
    index: tp.Dict[Path, int] = {}

    def prepare(paths: tp.Sequence[Path]) -> None:
        index.clear()
        index.update({Path(p): i for i, p in enumerate(paths)})
        vggish.embed_sets({'analysis': [str(p) for p in paths]}, Path(workdir.name), checkpoint,
                          workers=int(context.options.get('vggish.workers', 2)), progress=context.progress)

    def embed(path: Path) -> np.ndarray:
        # od.metrics.fad_tf.pipeline writes <set>/embeddings/<position in the list>.npy, or failed/<...>.txt
        name, folder = f"{index[path]:07d}", Path(workdir.name) / 'analysis'
        vectors = folder / 'embeddings' / f"{name}.npy"
        if vectors.exists():
            return np.load(vectors)                                          # [N, 128]
        failed = folder / 'failed' / f"{name}.txt"
        raise ValueError(failed.read_text() if failed.exists() else f"{path}: VGGish wrote nothing for it")
    embed.workdir = workdir  # type: ignore[attr-defined]  (lives as long as the encoder)
    return Encoder('vggish', tuple(AUDIO_EXTS), embed, prepare)

@register_encoder('midi')
def midi_encoder(arg: tp.Optional[str], context: EncoderContext) -> Encoder:
    """Symbolic features of `.mid`/`.midi` files from their notes (od/analysis/midi.py; no weights)."""
    from .midi import symbolic_features
    return Encoder('midi', MIDI_EXTS, symbolic_features)

