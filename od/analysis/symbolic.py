"""Symbolic (MIDI) vs audio embeddings of the same songs: plots, centroids, cosines, variance, retrieval.

    python -m od.symbolic --dataset songs/ --encoders mel,clap,vggish --out results/songs/

`songs/<category>/<song>.mid` (or `.midi`), optionally with the same song as audio beside it
(`<song>.wav|flac|ogg|mp3|m4a`), as in seed 004. The spaces compared:

  midi          the weight-free symbolic encoder on the MIDI files (od/analysis/midi.py)
  <enc>         each audio encoder on the audio files (when the dataset has any)
  <enc>@midi    each audio encoder on the MIDI files played by FluidSynth with a General MIDI
                soundfont (`<out>/rendered/<category>/<song>.wav`, re-rendered only when the MIDI
                changes), so every symbolic song is also in every audio space

For every space the output folder gets what od.analysis.embeddings writes (PCA/t-SNE scatter,
cosine matrix of category means, centroids, per-category variance, within/between cosine,
silhouette; `all_encoders.png` side by side; metrics.json), plus `comparison.json`:

  - retrieval, per audio encoder, over the songs that exist both as MIDI and as audio: each
    song's rendering queries the audio of all those songs in that encoder's space (each side
    standardised per dimension on its own statistics, then cosine); recall@1 and recall@5
    (chance: k / songs), the
    nearest song's category accuracy, and `<enc>_retrieval.png` (query x gallery cosines);
  - linear CKA between the symbolic space and each audio space over the same songs: how much of
    one space's geometry the other shares (1: identical up to rotation and scale).
"""
from __future__ import annotations

import logging
import typing as tp
from pathlib import Path

import numpy as np

from ..data.manifest import AUDIO_EXTS
from .encoders import MIDI_EXTS, Encoder, EncoderContext, build_encoder

logger = logging.getLogger(__name__)
SYMBOLIC = 'midi'
RENDERED = '@midi'


def rendered_encoder(encoder: Encoder, renders: tp.Dict[Path, Path], failures: tp.Dict[str, str]) -> Encoder:
    """`encoder` applied to the FluidSynth renderings of MIDI files (a MIDI file in, its wav embedded)."""
    def wav_of(path: Path) -> Path:
        if path not in renders:
            raise ValueError(failures.get(str(path), f"{path}: not rendered"))
        return renders[path]

    def prepare(paths: tp.Sequence[Path]) -> None:   # batch encoders (VGGish) run once over the renderings
        encoder.prepare([renders[p] for p in paths if p in renders])
    return Encoder(encoder.name + RENDERED, MIDI_EXTS, lambda path: encoder.embed(wav_of(path)),
                   prepare if encoder.prepare is not None else None)


def _song(path: Path, root: Path) -> str:
    return str(path.relative_to(root).with_suffix(''))


def _standardised_unit(X: np.ndarray) -> np.ndarray:
    """Each dimension centred and scaled by this side's own statistics, then rows to unit length:
    removes the per-dimension offset and scale between rendered and recorded audio."""
    X = (X - X.mean(0, keepdims=True)) / (X.std(0, keepdims=True) + 1e-8)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def retrieval(queries: np.ndarray, gallery: np.ndarray, labels: tp.Sequence[str],
              ks: tp.Sequence[int] = (1, 5)) -> tp.Dict[str, tp.Any]:
    """Row i of `queries` should find row i of `gallery` (same song): recall@k, chance, category accuracy."""
    S = _standardised_unit(queries) @ _standardised_unit(gallery).T             # [N, N]
    order = np.argsort(-S, axis=1)
    rank = np.argmax(order == np.arange(len(S))[:, None], axis=1)               # 0 = found first
    labels = np.asarray(labels)
    out: tp.Dict[str, tp.Any] = {'n_songs': int(len(S)), 'similarity': S,
                                 'nn_category_accuracy': float(np.mean(labels[order[:, 0]] == labels)),
                                 'median_rank': float(np.median(rank) + 1)}
    for k in ks:
        out[f'recall@{k}'] = float(np.mean(rank < k))
        out[f'chance@{k}'] = float(min(1., k / len(S)))
    return out


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear centred kernel alignment of two representations of the same rows (Kornblith et al.)."""
    X, Y = X - X.mean(0), Y - Y.mean(0)
    cross = np.linalg.norm(Y.T @ X) ** 2
    return float(cross / max(np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y), 1e-20))


def _by_song(entry, root: Path) -> tp.Dict[str, tp.Tuple[np.ndarray, str]]:
    X, labels, paths = entry
    return {_song(p, root): (x, c) for x, c, p in zip(X, labels, paths)}


def compare(dataset: tp.Union[str, Path], encoders: tp.Sequence[str] = ('mel',), out: tp.Union[str, Path] = 'results',
            *, soundfont: tp.Optional[str] = None, render: bool = True, sample_rate: int = 32000,
            device: str = 'cpu', options: tp.Optional[tp.Dict[str, str]] = None, seed: int = 0,
            progress: bool = True) -> tp.Dict[str, tp.Any]:
    """Run the study (see the module doc); returns what comparison.json holds."""
    from ..core.atomic import write_json
    from . import plots
    from .embeddings import analyse, walk_dataset
    from .midi import find_soundfont, fluidsynth_exe, render_all
    root, out = Path(dataset), Path(out)
    items = walk_dataset(root)
    midis = [p for p, _ in items if p.suffix.lower() in MIDI_EXTS]
    if not midis:
        raise FileNotFoundError(f"No MIDI files ({', '.join(MIDI_EXTS)}) in the category folders of {root}.")
    n_audio = sum(p.suffix.lower() in AUDIO_EXTS for p, _ in items)
    context = EncoderContext(root=root, device=device, options=dict(options or {}), progress=progress)
    audio_encoders = [build_encoder(spec, context) for spec in encoders]     # weights first: fail fast
    for encoder in audio_encoders:
        if not set(encoder.exts) & set(AUDIO_EXTS):
            raise ValueError(f"'{encoder.name}' does not read audio; give audio encoders (mel, clap, vggish, ...)")
    renders, failures = {}, {}
    if render:
        fluidsynth_exe()
        font = find_soundfont(soundfont)
        renders, failures = render_all(midis, root, out / 'rendered', font, sample_rate, progress)
        if failures:
            logger.warning("FluidSynth could not render %d of %d MIDI files (listed in skipped.txt)",
                           len(failures), len(midis))
    spaces = [build_encoder(SYMBOLIC, context)]
    for encoder in audio_encoders:
        if n_audio:
            spaces.append(encoder)
        if render:
            spaces.append(rendered_encoder(encoder, renders, failures))
    vectors: tp.Dict[str, tp.Any] = {}
    report = analyse(root, spaces, out, device=device, options=options, seed=seed, progress=progress, vectors=vectors)
    symbolic = _by_song(vectors[SYMBOLIC], root)
    comparison: tp.Dict[str, tp.Any] = {'dataset': str(root), 'midi_files': len(midis), 'audio_files': n_audio,
                                        'rendered': len(renders), 'render_failures': failures,
                                        'soundfont': str(font) if render else None, 'retrieval': {}, 'cka': {},
                                        'spaces': {name: {k: m.get(k) for k in ('n_files', 'silhouette_cosine',
                                                                                   'mean_variance', 'cosine', 'error')}
                                                   for name, m in report['encoders'].items()}}
    for encoder in audio_encoders:
        audio = _by_song(vectors[encoder.name], root) if encoder.name in vectors else {}
        rendered = _by_song(vectors[encoder.name + RENDERED], root) if encoder.name + RENDERED in vectors else {}
        for other, space in ((encoder.name, audio), (encoder.name + RENDERED, rendered)):
            common = sorted(set(symbolic) & set(space))
            if len(common) >= 3:
                comparison['cka'][f'{SYMBOLIC} vs {other}'] = linear_cka(
                    np.stack([symbolic[s][0] for s in common]), np.stack([space[s][0] for s in common]))
        paired = sorted(set(audio) & set(rendered))
        if len(paired) < 2:
            continue
        result = retrieval(np.stack([rendered[s][0] for s in paired]), np.stack([audio[s][0] for s in paired]),
                           [audio[s][1] for s in paired])
        S = result.pop('similarity')
        result['plot'] = str(plots.heatmap(out / f"{encoder.name}_retrieval.png", S, paired,
                                           f"{encoder.name}: rendered MIDI (rows) vs audio (columns)"))
        comparison['retrieval'][encoder.name] = result
    comparison['metrics'] = str(out / 'metrics.json')
    write_json(out / 'comparison.json', comparison)
    return comparison


def summary(comparison: tp.Dict[str, tp.Any]) -> str:
    def fmt(v, spec='.3f'):
        return '-' if v is None else format(v, spec)
    lines = [f"{'space':<16}{'files':>7}{'silhouette':>12}{'within cos':>12}{'between cos':>13}{'mean var':>11}"]
    for name, m in comparison['spaces'].items():
        if m.get('error'):
            lines.append(f"{name:<16}  {m['error']}")
            continue
        lines.append(f"{name:<16}{m['n_files']:>7}{fmt(m['silhouette_cosine']):>12}"
                     f"{fmt(m['cosine']['within_category_mean']):>12}{fmt(m['cosine']['between_category_mean']):>13}"
                     f"{fmt(m['mean_variance'], '.4g'):>11}")
    for name, r in comparison['retrieval'].items():
        lines.append(f"retrieval {name}: audio from its MIDI over {r['n_songs']} songs: recall@1 {r['recall@1']:.3f} "
                     f"(chance {r['chance@1']:.3f}), recall@5 {r['recall@5']:.3f} (chance {r['chance@5']:.3f}), "
                     f"nearest song's category {r['nn_category_accuracy']:.3f}")
    for pair, value in comparison['cka'].items():
        lines.append(f"linear CKA {pair}: {value:.3f}")
    return '\n'.join(lines)
