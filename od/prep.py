"""Fill the conditioners' embedding caches ahead of training.

    python -m od.prep solver=musicgen/musicgen_base_32khz conditioner=clipemb2music dset=audio/<name>

    python -m od.prep solver=musicgen/musicgen_base_32khz conditioner=clapemb2music dset=audio/<name>

Takes the same overrides as `dora run`, so it builds the very conditioners (same CLIP/CLAP, same
rates) the run will build, walks every manifest of the dataset, and embeds each video (CLIP) or
audio file (CLAP) once into the cache, with a progress bar. Training then reads embeddings only.
Files that cannot be read are listed and counted, never fatal.
"""
from __future__ import annotations

import sys
import typing as tp
from pathlib import Path

USAGE = __doc__


def manifest_paths(cfg) -> tp.List[str]:
    """Audio paths of every split's manifest (each file once)."""
    from dora import git_save

    from .data.manifest import read_manifest
    seen: tp.Dict[str, None] = {}
    for split in ('train', 'valid', 'evaluate', 'generate'):
        folder = cfg.datasource.get(split)
        if not folder:
            continue
        manifest = Path(git_save.to_absolute_path(folder)) / 'data.jsonl'
        if not manifest.exists():
            raise FileNotFoundError(f"{manifest} not found: write it with python -m od.data.manifest")
        for entry in read_manifest(manifest):
            seen.setdefault(entry['path'], None)
    return list(seen)


def prepare(argv: tp.Sequence[str], progress: bool = True) -> tp.Dict[str, tp.Dict[str, int]]:
    """Embed every video (clip_frames) or audio file (clap_audio) of the dataset for each caching
    conditioner; returns counts per attribute."""
    from tqdm import tqdm

    from . import environment, registry, train
    environment.setup()
    cfg = train.main.get_xp(list(argv)).cfg
    train.resolve_device(cfg)
    environment.absolute_user_paths(cfg)
    registry.setup(cfg.get('registry_modules') or [])
    paths = manifest_paths(cfg)
    report = {}
    for attribute, spec in (cfg.conditioners or {}).items():
        model = spec['model']
        cond = registry.build_conditioner(model, int(cfg.transformer_lm.dim), dict(spec.get(model) or {}),
                                          device=cfg.device, duration=cfg.dataset.segment_duration)
        if hasattr(cond, 'file_embeddings'):  # clap_audio: each audio file's windows
            items, embed, errors, unit = [Path(p) for p in paths], cond.file_embeddings, (ValueError,), 'file'
        elif hasattr(cond, 'video_embeddings'):  # clip_frames: each video's frames
            from .data.frames import IMAGE_EXTS, FrameError, read_image
            media = list(dict.fromkeys(cond.media_for(p) for p in paths))
            items = [v for v in media if v.suffix.lower() not in IMAGE_EXTS]
            embed, errors, unit = cond.video_embeddings, (FrameError,), 'video'
        else:
            continue
        from .atomic import clean_stale
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
    return report


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(USAGE)
        print("example: python -m od.prep solver=musicgen/debug conditioner=clipemb2music dset=audio/colors")
        return 0
    from .data.manifest import ManifestError
    from .environment import ConfigError, MissingWeightsError
    from .registry import PluginRequiredError
    try:
        report = prepare(argv)
    except (ConfigError, MissingWeightsError, PluginRequiredError, FileNotFoundError, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not report:
        print("No conditioner of this config caches embeddings (e.g. conditioner=clipemb2music or clapemb2music).")
    for attribute, counts in report.items():
        print(f"{attribute}: {counts['items']} {counts['unit']}s, {counts['cached_before']} already cached, "
              f"{counts['embedded']} embedded now, {counts['failed']} skipped")
    unwritten = {a: c for a, c in report.items() if c['unwritten']}
    for attribute, counts in unwritten.items():  # od.prep's one job is the cache: a full disk is a failure
        print(f"error: {attribute}: {counts['unwritten']} cache entries could not be written under {counts['cache']} "
              "(see the warning above: a full disk?); free space or set cache_dir elsewhere, then run the "
              "same command again (entries already written are kept).", file=sys.stderr)
    return 1 if unwritten else 0


if __name__ == '__main__':
    sys.exit(main())
