"""Embedding-space analysis: do an encoder's embeddings separate the categories of a dataset?

    python -m od.embeddings --dataset songs/ --encoders clap,vggish,clip --out results/songs/

The dataset is `<root>/<category>/<files>` (audio wav/flac/ogg/mp3, video mp4, images, or `.npy`
vectors). Each encoder embeds every file it reads (one vector per file; frames and windows are
mean-pooled); files it cannot read are reported and skipped. Per encoder the output folder gets
  <enc>_scatter.png          PCA and t-SNE, coloured by category
  <enc>_cosine.csv / .png    cosine similarity between category means
  embeddings/<enc>/<category>/<stem>.npy   the vectors (reusable with `--encoders npy=<that dir>`)
and, for all encoders, all_encoders.png (side by side), metrics.json (centroids full and
reduced, the cosine matrix, mean per-category variance, within/between-category cosine,
silhouette; see od/analysis/space.py) and skipped.txt. Every file is written atomically.
"""
from __future__ import annotations

import json
import logging
import typing as tp
from pathlib import Path

import numpy as np

from . import plots, space
from .encoders import MEDIA_EXTS, Encoder, EncoderContext, build_encoder, pooled

logger = logging.getLogger(__name__)


def walk_dataset(root: tp.Union[str, Path]) -> tp.List[tp.Tuple[Path, str]]:
    """(file, category) for every media file under `<root>/<category>/` (hidden folders skipped);
    files of other extensions are reported by extension (a warning)."""
    import collections

    from ..data.walk import describe_ignored, split_by_extension, strays, walk_files
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Dataset folder not found: {root}")
    items, ignored = [], collections.Counter()
    for category in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.')):
        for path, why in strays(category, MEDIA_EXTS).items():
            logger.warning("Skipping %s: %s", path, why)
        files, other = split_by_extension(walk_files(category), MEDIA_EXTS)
        items += [(path, category.name) for path in files]
        ignored.update(other)
    note = describe_ignored(ignored, 'a media format')
    if note:
        logger.warning("%s: %s", root, note)
    if not items:
        raise FileNotFoundError(f"No media files ({', '.join(MEDIA_EXTS)}) in category folders under {root}; "
                                "expected <root>/<category>/<files>." + (f" {note}." if note else ''))
    return items


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def embed_dataset(encoder: Encoder, items: tp.Sequence[tp.Tuple[Path, str]], progress: bool = True):
    """(X [N, D], labels [N], paths, skipped {path: reason}, n_not_applicable) for one encoder."""
    import collections

    from tqdm import tqdm
    todo = [(p, c) for p, c in items if encoder.accepts(p)]
    done, skipped = [], {}
    if encoder.prepare is not None and todo:
        try:
            encoder.prepare([p for p, _ in todo])
        except Exception as exc:  # the batch run failed as a whole: every file is reported
            logger.warning("%s failed on the whole set: %s", encoder.name, _reason(exc))
            skipped = {str(p): f"{encoder.name} batch run failed: {_reason(exc)}" for p, _ in todo}
            todo = []
    for path, category in tqdm(todo, desc=f"embedding with {encoder.name}", unit='file', disable=not progress):
        try:
            done.append((path, category, pooled(encoder.embed(path), path)))
        except Exception as exc:  # decoders raise many types; one bad file must not stop the run
            skipped[str(path)] = _reason(exc)
            logger.warning("%s cannot embed %s: %s", encoder.name, path, skipped[str(path)])
    if done:  # a stray vector of another size (e.g. a foreign .npy) is left out, not fatal
        shape = collections.Counter(v.shape for _, _, v in done).most_common(1)[0][0]
        for path, _, vector in done:
            if vector.shape != shape:
                skipped[str(path)] = f"embedding of shape {vector.shape}, most files give {shape}"
        done = [d for d in done if d[2].shape == shape]
    X = np.stack([v for _, _, v in done]) if done else np.zeros((0, 0))
    return X, np.array([c for _, c, _ in done]), [p for p, _, _ in done], skipped, len(items) - len(todo)


def _write_text(path: Path, text: str) -> None:
    from ..core.atomic import write_text
    write_text(path, text)


def write_npy(path: Path, array: np.ndarray) -> None:
    from ..core.atomic import np_save
    np_save(path, array)


def cosine_csv(matrix: np.ndarray, categories: tp.Sequence[str]) -> str:
    import csv
    import io
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow([''] + list(categories))
    for name, row in zip(categories, matrix):
        writer.writerow([name] + [f"{v:.6f}" for v in row])
    return buffer.getvalue()


def _unique_names(encoders: tp.List[Encoder]) -> None:
    seen: tp.Dict[str, int] = {}
    for encoder in encoders:
        seen[encoder.name] = seen.get(encoder.name, 0) + 1
        if seen[encoder.name] > 1:
            encoder.name = f"{encoder.name}-{seen[encoder.name]}"


def analyse(dataset: tp.Union[str, Path], encoders: tp.Sequence[tp.Union[str, Encoder]] = ('clip',),
            out: tp.Union[str, Path] = 'results', *, device: str = 'cpu',
            cache_dir: tp.Optional[tp.Union[str, Path]] = None, use_cache: bool = True, fps: float = 1.0,
            options: tp.Optional[tp.Dict[str, str]] = None, seed: int = 0, save_vectors: bool = True,
            progress: bool = True, vectors: tp.Optional[dict] = None) -> tp.Dict[str, tp.Any]:
    """Embed `dataset` with each encoder, reduce, measure, plot; returns what metrics.json holds.

    Args:
        encoders: specs (`clip`, `npy=<dir>`, ... see od.analysis.encoders) or Encoder objects.
        cache_dir: where video frame embeddings are cached (default: `.od_cache/` beside them).
        fps: video frames per second embedded. options: `<encoder>.<key>` -> value.
        vectors: if given, filled with encoder name -> (X [N, D], labels [N], paths) for callers
            that measure more (od.analysis.symbolic's retrieval).
    Raises:
        ValueError when no encoder could embed enough files to measure anything.
    """
    root, out = Path(dataset), Path(out)
    from ..core.atomic import clean_stale
    clean_stale(out, recursive=True)  # temporaries of killed runs
    items = walk_dataset(root)
    context = EncoderContext(root=root, device=device, cache_dir=Path(cache_dir) if cache_dir else None,
                             use_cache=use_cache, fps=fps, options=dict(options or {}), progress=progress)
    # Load every model first: a missing weight file stops the run before any long embedding.
    built = [e if isinstance(e, Encoder) else build_encoder(e, context) for e in encoders]
    _unique_names(built)
    all_categories = sorted({c for _, c in items})
    report: tp.Dict[str, tp.Any] = {'dataset': str(root), 'n_files': len(items),
                                    'categories': all_categories, 'encoders': {}}
    figures: tp.Dict[str, tp.Tuple[dict, np.ndarray]] = {}
    skipped_lines = []
    for encoder in built:
        X, labels, paths, skipped, not_applicable = embed_dataset(encoder, items, progress)
        if vectors is not None:
            vectors[encoder.name] = (X, labels, paths)
        skipped_lines += [f"{encoder.name}\t{path}\t{why}" for path, why in sorted(skipped.items())]
        entry: tp.Dict[str, tp.Any] = {'skipped': skipped, 'not_applicable': not_applicable}
        report['encoders'][encoder.name] = entry
        if len(X) < 3 or len(set(labels)) < 2:
            entry['error'] = (f"only {len(X)} files in {len(set(labels))} categories embedded: "
                              "need 3 files in 2 categories")
            logger.warning("%s: %s", encoder.name, entry['error'])
            continue
        reduced = space.reduce(X, seed)
        entry.update(space.space_metrics(X, labels, reduced))
        cats = entry['categories']
        matrix = np.array(entry['centroid_cosine'])
        _write_text(out / f"{encoder.name}_cosine.csv", cosine_csv(matrix, cats))
        entry['plots'] = {
            'scatter': str(plots.scatter_figure(out / f"{encoder.name}_scatter.png", encoder.name,
                                                reduced, labels, all_categories)),
            'cosine': str(plots.heatmap(out / f"{encoder.name}_cosine.png", matrix, cats,
                                        f"{encoder.name}: cosine similarity of category means")),
        }
        if save_vectors:
            for path, vector in zip(paths, X):
                write_npy(out / 'embeddings' / encoder.name / path.relative_to(root).with_suffix('.npy'),
                           vector.astype(np.float32))
        figures[encoder.name] = (reduced, labels)
    if not figures:
        raise ValueError("No encoder embedded enough files to analyse:\n" + '\n'.join(
            f"  {name}: {entry['error']}" for name, entry in report['encoders'].items()))
    report['side_by_side'] = str(plots.side_by_side(out / 'all_encoders.png', figures, all_categories))
    _write_text(out / 'skipped.txt', ''.join(line + '\n' for line in skipped_lines))
    _write_text(out / 'metrics.json', json.dumps(report, indent=2))
    return report


def summary(report: tp.Dict[str, tp.Any]) -> str:
    """One line per encoder: files, skipped, within/between cosine, silhouette, variance."""
    def fmt(value, spec='.3f'):
        return '-' if value is None else format(value, spec)
    lines = [f"{'encoder':<14}{'files':>7}{'skipped':>9}{'within cos':>12}{'between cos':>13}"
             f"{'silhouette':>12}{'mean var':>11}"]
    for name, m in report['encoders'].items():
        if 'error' in m:
            lines.append(f"{name:<14}{'':>7}{len(m['skipped']):>9}  {m['error']}")
            continue
        lines.append(f"{name:<14}{m['n_files']:>7}{len(m['skipped']):>9}{fmt(m['cosine']['within_category_mean']):>12}"
                     f"{fmt(m['cosine']['between_category_mean']):>13}{fmt(m['silhouette_cosine']):>12}"
                     f"{fmt(m['mean_variance'], '.4g'):>11}")
    return '\n'.join(lines)
