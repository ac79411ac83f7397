"""The files an evaluation compares: audio of a folder or manifest, and the text each generated
file was made from. Shared by od.eval and the solver's evaluate stage."""
from __future__ import annotations

import json
import sys
import typing as tp
from pathlib import Path

from ..data.formats import AUDIO_EXTS


def audio_files(source: tp.Union[str, Path]) -> tp.List[str]:
    """Audio paths of a folder (recursive) or of an AudioCraft manifest (folder or .jsonl[.gz])."""
    source = Path(source)
    manifests = [source] if source.suffix in ('.jsonl', '.gz') else \
        [source / n for n in ('data.jsonl', 'data.jsonl.gz') if (source / n).is_file()]
    if manifests:
        from ..data.manifest import read_manifest
        return [e['path'] for e in read_manifest(manifests[0], durations=False)]  # paths are enough here
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither an audio folder nor a manifest (data.jsonl)")
    from ..data.walk import describe_ignored, split_by_extension, strays, walk_files
    for path, why in strays(source, AUDIO_EXTS).items():
        print(f"[od.eval] skipped {path}: {why}", file=sys.stderr)
    # walk_files: symlink loops and broken links are not files; names need not be UTF-8.
    taken, ignored = split_by_extension(walk_files(source), AUDIO_EXTS, companions=('.json', '.txt'))
    if ignored:
        print(f"[od.eval] {source}: {describe_ignored(ignored, 'audio')}", file=sys.stderr)
    if not taken:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_EXTS)}) under {source}")
    return [str(p) for p in taken]


def descriptions(files: tp.Sequence[str]) -> tp.List[str]:
    """The text each generated file was made from: `<stem>.txt`, else `<stem>.json` description."""
    texts, missing = [], []
    for f in map(Path, files):
        txt, sidecar = f.with_suffix('.txt'), f.with_suffix('.json')
        if txt.is_file():
            texts.append(txt.read_text().strip())
            continue
        description = json.loads(sidecar.read_text()).get('description') if sidecar.is_file() else None
        if description:
            texts.append(description)
        else:
            missing.append(str(f))
    if missing:
        raise FileNotFoundError(f"clap_score needs the text of every generated file; none for "
                                f"{len(missing)} file(s), e.g. {missing[0]}: write <stem>.txt or a "
                                f"<stem>.json with a 'description'")
    return texts
