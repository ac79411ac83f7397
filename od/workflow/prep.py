"""Fill the caches a training run reads, ahead of it: frame/audio embeddings, codec tokens.

    python -m od.prep solver=musicgen/musicgen_base_32khz conditioner=clipemb2music dset=audio/<name>

    python -m od.prep solver=musicgen/musicgen_base_32khz conditioner=clapemb2music dset=audio/<name>

    python -m od.prep --tokens --token-epochs 4 solver=musicgen/debug conditioner=clipemb2music \\
        dset=audio/<name> cache.path=cache/tokens/<name>

Takes the same overrides as `dora run`, so it builds the very conditioners (same CLIP/CLAP, same
rates) the run will build, walks every manifest of the dataset, and embeds each video (CLIP) or
audio file (CLAP) once into the cache, with a progress bar. Training then reads embeddings only.
Files that cannot be read are listed and counted, never fatal.

`--tokens` also fills AudioCraft's codec-token cache at `cache.path` (od/solvers/token_cache.py):
`--token-epochs` epochs of `optim.updates_per_epoch` training batches, encoded once by the run's
compression model. Give the run the same `cache.path=...`: its steps then encode no audio
(epochs beyond those cached reuse them in turn), and the media conditioners still read each
segment's own window.
"""
from __future__ import annotations

import sys
import typing as tp
from pathlib import Path

USAGE = __doc__


def manifest_paths(cfg) -> tp.List[str]:
    """Audio paths of every split's manifest (each file once; `.jsonl` or `.jsonl.gz`)."""
    from dora import git_save

    from ..data.manifest import read_manifest
    seen: tp.Dict[str, None] = {}
    for split in ('train', 'valid', 'evaluate', 'generate'):
        folder = cfg.datasource.get(split)
        if not folder:
            continue
        folder = Path(git_save.to_absolute_path(folder))
        manifest = next((m for m in (folder, folder / 'data.jsonl', folder / 'data.jsonl.gz') if m.is_file()), None)
        if manifest is None:
            raise FileNotFoundError(f"{folder / 'data.jsonl'} not found: write it with python -m od.manifest")
        for entry in read_manifest(manifest):  # names a bad line (file and line), reads .jsonl.gz too
            seen.setdefault(entry['path'], None)
    return list(seen)


def prepare(argv: tp.Sequence[str], progress: bool = True, tokens: bool = False,
            token_epochs: int = 1) -> tp.Dict[str, tp.Dict[str, tp.Any]]:
    """Embed every video (clip_frames) or audio file (clap_audio) of the dataset for each caching
    conditioner, and with `tokens` fill the codec-token cache; returns counts per attribute
    (and under 'tokens')."""
    from tqdm import tqdm

    from ..conditioners import hooks, registry
    from ..core import environment
    from . import runs
    cfg = runs.get_xp(list(argv)).cfg
    runs.resolve_device(cfg)
    environment.absolute_user_paths(cfg)
    registry.import_modules(cfg.get('registry_modules') or [])
    hooks.install()
    if tokens and not cfg.cache.path:
        raise environment.ConfigError("--tokens needs cache.path=<folder>: where the codec tokens go (give the "
                                      "run the same cache.path)")
    paths = manifest_paths(cfg)
    report: tp.Dict[str, tp.Dict[str, tp.Any]] = {}
    for attribute, spec in (cfg.conditioners or {}).items():
        model = spec['model']
        cond = registry.build_conditioner(model, int(cfg.transformer_lm.dim), dict(spec.get(model) or {}),
                                          device=cfg.device, duration=cfg.dataset.segment_duration)
        if hasattr(cond, 'file_embeddings'):  # clap_audio: each audio file's windows
            items, embed, errors, unit = [Path(p) for p in paths], cond.file_embeddings, (ValueError,), 'file'
        elif hasattr(cond, 'video_embeddings'):  # clip_frames: each video's frames
            from ..data.frames import IMAGE_EXTS, FrameError, read_image
            media = list(dict.fromkeys(cond.media_for(p) for p in paths))
            items = [v for v in media if v.suffix.lower() not in IMAGE_EXTS]
            embed, errors, unit = cond.video_embeddings, (FrameError,), 'video'
        else:
            continue
        from ..core.atomic import clean_stale
        for folder in {cond.cache.path_for(item).parent for item in items}:
            clean_stale(folder)  # entries half-written by killed runs
        failed, unreadable_images = [], 0
        if unit == 'video':  # images are embedded in training (not cached): check that they decode now
            for image in (v for v in media if v.suffix.lower() in IMAGE_EXTS):
                try:
                    read_image(image)
                except FrameError as exc:
                    failed.append(f"{image}: {exc} (trains with the null condition)")
        unreadable_images = len(failed)
        for item in tqdm(items, desc=f"embedding {attribute} ({model})", unit=unit, disable=not progress):
            try:
                embed(item)
            except errors as exc:
                failed.append(f"{item}: {exc}")
        report[attribute] = {'items': len(items), 'unit': unit, 'cached_before': cond.cache.hits,
                             'embedded': cond.cache.misses - (len(failed) - unreadable_images),
                             'failed': len(failed), 'unwritten': cond.cache.write_failures,
                             'cache': str(cond.cache.path_for(items[0]).parent) if items else ''}
        for line in failed:
            print(f"  skipped {line}", file=sys.stderr)
        del cond
    if tokens:
        from ..solvers import token_cache
        solver = runs.build_solver(list(argv))
        report['tokens'] = {**token_cache.fill(solver, token_epochs, progress), 'folder': str(cfg.cache.path)}
    return report
