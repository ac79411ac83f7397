"""CLAP-based metrics: FAD and KAD over laion-clap embeddings, and the CLAP score (audio-text cosine).

Both run on the torch side (no TensorFlow environment needed). Each file's embedding is the
mean of its 10-s window embeddings (od.encoders.clap.embed_audio_files). Reference statistics
can be cached in an `.npz` (od.metrics.fad format) so a training run embeds its reference set
once; the cache records the CLAP tag and the reference file list, and is recomputed when they
change.
"""
from __future__ import annotations

import logging
import typing as tp
from pathlib import Path

import numpy as np

from ..encoders.clap import ClapEncoder, embed_audio_files, get_clap, locate_clap
from .fad import files_digest, frechet_distance, gaussian_stats, load_stats, save_stats

logger = logging.getLogger(__name__)
Model = tp.Union[None, str, ClapEncoder]


def check_clap(model: tp.Optional[str] = None) -> None:
    """Raise MissingWeightsError now (naming the files and where they go) if CLAP cannot load."""
    if not isinstance(model, ClapEncoder):
        locate_clap(model)  # cheap: fails before any model is built
        get_clap(model)     # full check (tokenizer vocab, weights match); cached for later use


def _reference_stats(files: tp.Sequence[str], encoder: ClapEncoder, stats_cache: tp.Optional[Path],
                     progress: bool) -> tp.Tuple[np.ndarray, np.ndarray, int]:
    key = files_digest(encoder.tag, files)  # the set a cached file must match
    if stats_cache is not None and Path(stats_cache).exists():
        try:
            with np.load(stats_cache) as data:
                cached_key = str(data['key']) if 'key' in data else None
            if cached_key == key:
                return load_stats(stats_cache)
            logger.info("CLAP stats cache %s is for another model or file set: recomputing", stats_cache)
        except Exception as exc:  # truncated/foreign file
            logger.warning("Ignoring unreadable CLAP stats cache %s (%s)", stats_cache, exc)
    embeds = embed_audio_files(files, encoder, progress=progress)
    mu, sigma = gaussian_stats(embeds)
    if stats_cache is not None:
        save_stats(stats_cache, mu, sigma, len(embeds), key=key, tag=encoder.tag)
    return mu, sigma, len(embeds)


def fad_clap(reference_files: tp.Sequence[tp.Union[str, Path]], generated_files: tp.Sequence[tp.Union[str, Path]],
             model: Model = None, stats_cache: tp.Optional[tp.Union[str, Path]] = None,
             progress: bool = True) -> tp.Dict[str, tp.Any]:
    """Fréchet distance between the CLAP embeddings of two sets of audio files (lower is closer).

    Each set needs at least 2 readable files; unreadable ones are reported and skipped.
    Returns {'fad_clap', 'n_reference', 'n_generated', 'clap_model'}.
    """
    encoder = get_clap(model)
    reference = [str(p) for p in reference_files]
    mu_r, sigma_r, n_r = _reference_stats(reference, encoder, Path(stats_cache) if stats_cache else None, progress)
    generated = embed_audio_files([str(p) for p in generated_files], encoder, progress=progress)
    mu_g, sigma_g = gaussian_stats(generated)
    return {'fad_clap': frechet_distance(mu_r, sigma_r, mu_g, sigma_g), 'n_reference': int(n_r),
            'n_generated': int(len(generated)), 'dim': int(len(mu_g)), 'clap_model': encoder.tag}


def clap_score(audio_files: tp.Sequence[tp.Union[str, Path]], texts: tp.Union[str, tp.Sequence[str]],
               model: Model = None, progress: bool = True) -> tp.Dict[str, tp.Any]:
    """Mean cosine between each audio file's CLAP embedding and its text (one text for all, or
    one per file). Unreadable files are skipped with their text. Returns {'clap_score' in
    [-1, 1], 'scores' (per used file), 'n', 'n_skipped'}."""
    audio_files = [str(p) for p in audio_files]
    texts = [texts] * len(audio_files) if isinstance(texts, str) else list(texts)
    if len(texts) != len(audio_files):
        raise ValueError(f"{len(audio_files)} audio files but {len(texts)} texts: give one text, or one per file")
    encoder = get_clap(model)
    audio, used = embed_audio_files(audio_files, encoder, progress=progress, return_used=True)
    if not used:
        raise ValueError(f"none of the {len(audio_files)} audio files could be read (see the warnings above)")
    kept: tp.List[str] = []  # the texts of the used files (`used` keeps the order of `audio_files`)
    for path, text in zip(audio_files, texts):
        if len(kept) < len(used) and used[len(kept)] == path:
            kept.append(text)
    text = encoder.embed_text(kept).numpy()
    scores = (audio * text).sum(-1)  # both L2-normalised: cosine
    return {'clap_score': float(scores.mean()), 'scores': scores.tolist(), 'n': len(used),
            'n_skipped': len(audio_files) - len(used), 'clap_model': encoder.tag}


def kad_clap(reference_files: tp.Sequence[tp.Union[str, Path]], generated_files: tp.Sequence[tp.Union[str, Path]],
             model: Model = None, progress: bool = True) -> tp.Dict[str, tp.Any]:
    """Kernel Audio Distance (od.metrics.kad) between the CLAP embeddings (one per file) of two
    sets of audio files; each set needs at least 2 readable files.

    Returns {'kad_clap', 'n_reference', 'n_generated', 'dim', 'bandwidth', 'clap_model'}.
    """
    from .kad import kad_result
    encoder = get_clap(model)
    reference = embed_audio_files([str(p) for p in reference_files], encoder, progress=progress)
    generated = embed_audio_files([str(p) for p in generated_files], encoder, progress=progress)
    return kad_result('kad_clap', reference, generated, clap_model=encoder.tag)
