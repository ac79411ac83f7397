"""Concept datasets for textual inversion: folders of audio -> chunks + cached codec tokens.

    python -m od.concepts <name> <audio-root>       # <audio-root>/<concept>/*.wav|mp3|flac

Each file is cut into `--chunk` second pieces (default 5; a remainder shorter than a chunk is
dropped), each chunk is encoded ONCE by the compression model and its tokens saved as one
tensor per chunk ([K, T] int16), atomically:

    dataset/<name>/chunks/<key>/<concept>/<track>-<file id>_<i>.wav
    dataset/<name>/tokens/<key>/<concept>/<track>-<file id>_<i>.pt

Cached chunks are keyed by everything they depend on: `<key>` hashes the codec (checkpoint and
seed) and the chunk length, `<file id>` the file's path inside its concept folder (so
`a/track.wav`, `b/track.wav` and `track.flac` stay apart), size and modification time (an
edited file is encoded again).
    egs/<name>/metadata_train.json      [{audio_path, encoded_path, concept, track_id}, ...]
    egs/<name>/metadata_concepts.json   {concepts: {name: {tracks, chunks}}, codec: {...}, ...}

Training (`solver=musicgen/textual_inversion`) reads only the tokens; it refuses them when its
codec's fingerprint differs from the one recorded here. Corrupt and too-short files are
reported and skipped with counts; re-running skips chunks already cached.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import typing as tp
from pathlib import Path

from ..core import atomic
from ..core.environment import ROOT
from ..data.manifest import AUDIO_EXTS

logger = logging.getLogger(__name__)

DEBUG_CODEC = '//pretrained/debug_compression_model'
TRAIN_MANIFEST = 'metadata_train.json'
CONCEPTS_MANIFEST = 'metadata_concepts.json'


@dataclasses.dataclass
class PrepReport:
    egs: Path
    chunks: tp.Dict[str, int]           # concept -> chunks in the manifest
    encoded: int = 0                    # chunks encoded by this run
    cached: int = 0                     # chunks found already cached
    skipped: tp.Dict[str, str] = dataclasses.field(default_factory=dict)  # file -> reason
    ignored: tp.Dict[str, int] = dataclasses.field(default_factory=dict)  # extension -> files not audio

    def summary(self) -> str:
        per = ', '.join(f"{c}: {n}" for c, n in sorted(self.chunks.items()))
        lines = [f"{self.egs}: {sum(self.chunks.values())} chunks ({per}); encoded {self.encoded}, "
                 f"already cached {self.cached}; {len(self.skipped)} files skipped"]
        lines += [f"  skipped {path}: {why}" for path, why in sorted(self.skipped.items())]
        if self.ignored:
            from ..data.walk import describe_ignored
            lines.append(f"  {describe_ignored(self.ignored, 'an audio format: ' + ' '.join(AUDIO_EXTS))}")
        return '\n'.join(lines)


def find_concepts(audio_root: Path, ignored: tp.Optional[tp.Counter[str]] = None) -> tp.Dict[str, tp.List[Path]]:
    """concept (sub-folder name) -> its audio files, sorted; files of other extensions are
    counted by extension into `ignored`."""
    from ..data.walk import describe_ignored, split_by_extension, walk_files
    if not audio_root.is_dir():
        raise FileNotFoundError(f"Audio folder not found: {audio_root}")
    out, left = {}, collections.Counter()
    for folder in sorted(p for p in audio_root.iterdir() if p.is_dir() and not p.name.startswith('.')):
        files, other = split_by_extension(walk_files(folder), AUDIO_EXTS)
        left.update(other)
        if files:
            out[folder.name] = files
    if ignored is not None:
        ignored.update(left)
    if not out:
        note = describe_ignored(left, 'an audio format')
        raise FileNotFoundError(f"No <concept>/*{'|'.join(AUDIO_EXTS)} under {audio_root}: put each "
                                "concept's audio in its own sub-folder (e.g. {root}/8bit/track.wav)."
                                + (f" {note}." if note else ''))
    return out


def _save_atomic(obj: tp.Any, path: Path) -> None:
    atomic.torch_save(obj, path)


def _write_json(path: Path, data: tp.Any) -> None:
    atomic.write_json(path, data, indent=1)


def cache_key(compression_model: str, seed: int, chunk_seconds: float) -> str:
    """The folder of chunks and tokens made with this codec (checkpoint + seed) and chunk length."""
    import hashlib
    spec = json.dumps({'checkpoint': str(compression_model), 'seed': int(seed), 'chunk': float(chunk_seconds)},
                      sort_keys=True)
    return hashlib.sha1(spec.encode()).hexdigest()[:10]


def file_id(path: Path, concept_dir: Path) -> str:
    """`<stem>-<hash>`: unique per file inside its concept (nested folders and suffixes count)
    and per content version (size and modification time)."""
    import hashlib
    import os
    import re
    stat = path.stat()
    rel = path.relative_to(concept_dir).as_posix()
    digest = hashlib.sha1(os.fsencode(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}")).hexdigest()[:8]  # any name
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', path.stem)[:60]}-{digest}"


def prepare_concepts(name: str, audio_root: tp.Union[str, Path], chunk_seconds: float = 5.0,
                     compression_model: str = DEBUG_CODEC, seed: int = 2036, device: str = 'cpu',
                     dataset_dir: tp.Union[str, Path] = ROOT / 'dataset',
                     egs_dir: tp.Union[str, Path] = ROOT / 'egs', progress: bool = True,
                     batch_chunks: int = 8, codec: tp.Optional[tp.Any] = None) -> PrepReport:
    """Chunk, encode once and cache every concept's audio; write the two manifests.

    `compression_model` and `seed` must be those of the training run (`compression_model_checkpoint`,
    `seed`): the debug codec is random and depends on the seed. `codec`: that model, already built.
    The codec is built only when something needs encoding (or the manifest has no fingerprint).
    """
    import torch
    from audiocraft.data.audio import audio_info, audio_read
    from audiocraft.data.audio_utils import convert_audio
    from tqdm import tqdm

    from ..encoders.compression import build_compression_model, fingerprint

    audio_root = Path(audio_root)
    ignored: tp.Counter[str] = collections.Counter()
    concepts = find_concepts(audio_root, ignored)
    data_root, egs = Path(dataset_dir) / name, Path(egs_dir) / name
    spec = {'checkpoint': compression_model, 'seed': seed}
    previous = {}
    if (egs / CONCEPTS_MANIFEST).exists():
        previous = json.loads((egs / CONCEPTS_MANIFEST).read_text()).get('codec', {})
        if {k: previous.get(k) for k in spec} != spec:  # another codec: its tokens live under another key
            logger.info("%s was encoded with %s (seed %s); encoding with %s (seed %s) now", egs,
                        previous.get('checkpoint'), previous.get('seed'), compression_model, seed)
            previous = {}

    def get_codec():
        nonlocal codec
        if codec is None:
            codec = build_compression_model(compression_model, seed, device).eval()
        return codec
    if previous:
        sr, channels = previous['sample_rate'], previous['channels']
    else:
        sr, channels = get_codec().sample_rate, get_codec().channels
    chunk_len = int(round(chunk_seconds * sr))
    from ..core.atomic import clean_stale
    clean_stale(data_root, recursive=True)  # chunks and tokens of killed runs
    report = PrepReport(egs, {c: 0 for c in concepts}, ignored=dict(ignored))
    from ..data.walk import strays
    for concept in concepts:  # broken links, link loops, folders named like audio: named, not lost
        report.skipped.update(strays(audio_root / concept, AUDIO_EXTS))
    entries = []
    jobs = [(c, f) for c, files in concepts.items() for f in files]
    key = cache_key(compression_model, seed, chunk_seconds)
    for concept, path in tqdm(jobs, desc=f"encoding {name} chunks", unit='file', disable=not progress):
        try:
            track = file_id(path, audio_root / concept)
            info = audio_info(path)
            n_chunks = int((info.duration or 0) * sr // chunk_len)
        except Exception as exc:  # decoders raise many types
            report.skipped[str(path)] = f"cannot read ({type(exc).__name__}: {str(exc).strip()[:100]})"
            continue
        if n_chunks == 0:
            report.skipped[str(path)] = f"too short ({info.duration or 0:.2f} s < one {chunk_seconds:g} s chunk)"
            continue
        chunk_paths = [(data_root / 'chunks' / key / concept / f"{track}_{i:03d}.wav",
                        data_root / 'tokens' / key / concept / f"{track}_{i:03d}.pt") for i in range(n_chunks)]
        todo = [i for i, (wav, tok) in enumerate(chunk_paths) if not (wav.exists() and tok.exists())]
        if todo:
            try:
                wav, file_sr = audio_read(path)
                wav = convert_audio(wav.float(), file_sr, sr, channels)  # [C, T]; float64 wavs read as double
                if wav.shape[-1] < chunk_len * n_chunks or not torch.isfinite(wav).all():
                    raise ValueError("decoded audio is shorter than its header says, or not finite")
                if not wav.abs().max() > 0:
                    raise ValueError("silent (every sample is zero)")
            except Exception as exc:
                report.skipped[str(path)] = f"cannot decode ({type(exc).__name__}: {str(exc).strip()[:100]})"
                continue
            for start in range(0, len(todo), batch_chunks):
                idx = todo[start:start + batch_chunks]
                batch = torch.stack([wav[:, i * chunk_len:(i + 1) * chunk_len] for i in idx])  # [N, C, T]
                with torch.no_grad():
                    codes, _ = get_codec().encode(batch.to(device))  # [N, K, T_s]
                for j, i in enumerate(idx):
                    wav_path, tok_path = chunk_paths[i]
                    wav_path.parent.mkdir(parents=True, exist_ok=True)
                    atomic.write_wav(wav_path, batch[j].t().numpy(), sr)
                    _save_atomic(codes[j].to('cpu', torch.int16).clone(), tok_path)  # tokens last: marks done
            report.encoded += len(todo)
        report.cached += n_chunks - len(todo)
        report.chunks[concept] += n_chunks
        for wav_path, tok_path in chunk_paths:
            entries.append({'audio_path': str(wav_path.resolve()), 'encoded_path': str(tok_path.resolve()),
                            'concept': concept, 'track_id': f"{concept}/{path.relative_to(audio_root / concept)}"})
    for path, why in sorted(report.skipped.items()):
        logger.warning("Skipping %s: %s", path, why)
    if not entries:
        raise ValueError(f"No usable audio under {audio_root}:\n{report.summary()}")
    tracks = {c: len({e['track_id'] for e in entries if e['concept'] == c}) for c in concepts}
    _write_json(egs / TRAIN_MANIFEST, entries)
    _write_json(egs / CONCEPTS_MANIFEST, {
        'name': name, 'chunk_seconds': chunk_seconds,
        'concepts': {c: {'tracks': tracks[c], 'chunks': n} for c, n in report.chunks.items() if n},
        'codec': previous if codec is None else {
            **spec, 'fingerprint': fingerprint(codec), 'sample_rate': sr, 'channels': channels,
            'frame_rate': codec.frame_rate, 'n_q': codec.num_codebooks, 'cardinality': codec.cardinality}})
    return report


def write_dset_config(name: str, egs: Path, config_dir: Path = ROOT / 'config' / 'dset' / 'concepts') -> Path:
    """`config/dset/concepts/<name>.yaml` so that `dset=concepts/<name>` finds the manifests."""
    path = config_dir / f'{name}.yaml'
    if not path.exists():
        egs = egs.resolve()
        rel = egs.relative_to(ROOT) if egs.is_relative_to(ROOT) else egs
        from ..core import atomic
        atomic.write_text(path, f"# @package _global_\n# Written by python -m od.concepts {name} ...\n"
                                f"datasource:\n  train: {rel}\n  valid: null\n  evaluate: null\n  generate: null\n")
    return path


# Peak level per synthetic genre. AudioCraft's debug codec is random (its quantizer is fitted to
# Gaussian noise), so its codes keep loudness far better than timbre: at equal levels its token
# windows of two genres are hard to tell apart (leave one track out, nearest centroid on code
# histograms), at these levels they are not. The concept proof needs concepts the codes can
# tell apart, or it measures the codec instead of the learned rows.
SYNTHETIC_PEAKS = {'chiptune': 0.8, 'ambient': 0.1, 'drums': 0.6, 'plucked': 0.3}


def write_synthetic_concepts(audio_root: tp.Union[str, Path], genres: tp.Sequence[str] = ('chiptune', 'ambient'),
                             per_concept: int = 4, duration: float = 6.0, seed: int = 0) -> Path:
    """`<audio_root>/<genre>/<genre>_<i>.wav` from od.data.example's synthesiser, each genre at its
    `SYNTHETIC_PEAKS` level (a test set-up)."""
    import numpy as np

    from ..data.example import GENRES, SAMPLE_RATE, synthesise
    audio_root = Path(audio_root)
    for g_idx, genre in enumerate(genres):
        if genre not in GENRES:
            raise ValueError(f"unknown genre {genre}; choose from {list(GENRES)}")
        (audio_root / genre).mkdir(parents=True, exist_ok=True)
        for i in range(per_concept):
            path = audio_root / genre / f'{genre}_{i:02d}.wav'
            if not path.exists():
                wav = synthesise(genre, duration, seed * 7919 + g_idx * 1009 + i)[0]
                atomic.write_wav(path, wav * (SYNTHETIC_PEAKS[genre] / max(np.abs(wav).max(), 1e-9)), SAMPLE_RATE)
    return audio_root


def read_manifests(egs: tp.Union[str, Path]) -> tp.Tuple[tp.List[dict], dict]:
    """(chunk entries, concepts manifest) of a prepared concept dataset, or a clear error."""
    egs = Path(egs)
    train, concepts = egs / TRAIN_MANIFEST, egs / CONCEPTS_MANIFEST
    if not (train.exists() and concepts.exists()):
        raise FileNotFoundError(f"{egs} is not a prepared concept dataset (needs {TRAIN_MANIFEST} and "
                                f"{CONCEPTS_MANIFEST}): run `python -m od.concepts <name> <audio-root>`.")
    return json.loads(train.read_text()), json.loads(concepts.read_text())


def next_steps(name: str, compression_model: str) -> str:
    """The commands that train on this dataset, runnable as printed: with the debug codec, the
    debug solver and a tiny random T5 (no weights); otherwise the full solver, which needs a
    text-to-music starting checkpoint."""
    if compression_model == DEBUG_CODEC:
        return ("train (tiny CPU model, no weights needed):\n"
                "  python -m od.tiny t5 checkpoints/tiny-t5\n"
                f"  dora run solver=musicgen/textual_inversion_debug dset=concepts/{name} "
                "conditioners.description.t5_ti.name=checkpoints/tiny-t5")
    return ("train (needs a text-to-music starting checkpoint, see docs/concepts.md):\n"
            "  python -m od.make_ckpt --from facebook/musicgen-small --out checkpoints/small_t5.th "
            "solver=musicgen/musicgen_base_32khz model/lm/model_scale=small conditioner=text2music\n"
            f"  dora run solver=musicgen/textual_inversion model/lm/model_scale=small "
            f"continue_from=checkpoints/small_t5.th dset=concepts/{name}")
