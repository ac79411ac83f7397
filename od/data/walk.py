"""Walking a folder for media: which files a walker takes, and a report of those it does not.

Every walker of od (manifests, concept folders, embedding analysis, ingest) says which files it
left aside, counted by extension, so a folder of a format it does not read (a whole concept in
`.aiff`, say) never vanishes with "0 files skipped".
"""
from __future__ import annotations

import collections
import typing as tp
from pathlib import Path


def walk_files(root: tp.Union[str, Path]) -> tp.List[Path]:
    """Every file under `root`, sorted, without hidden files and folders (`.od_cache/`, ...)."""
    root = Path(root)
    return sorted(p for p in root.rglob('*')
                  if p.is_file() and not any(part.startswith('.') for part in p.relative_to(root).parts))


def strays(root: tp.Union[str, Path], exts: tp.Sequence[str]) -> tp.Dict[str, str]:
    """{path: why} for entries under `root` named like media (`exts`) that are not readable
    files: broken symbolic links, symbolic link loops, folders. `walk_files` leaves them out;
    walkers report them as skipped so they never vanish unnamed."""
    import os
    root, exts = Path(root), tuple(e.lower() for e in exts)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):  # does not follow links: a loop stays one entry
        dirnames[:] = [d for d in dirnames if not d.startswith('.')]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if name.startswith('.') or path.suffix.lower() not in exts or path.is_file():
                continue
            if path.is_symlink():
                try:
                    path.resolve(strict=True)
                    why = 'a symbolic link to something that is not a file'
                except FileNotFoundError:
                    why = f"a broken symbolic link (to {os.readlink(path)})"
                except (RuntimeError, OSError):  # Python 3.11 says RuntimeError for a loop
                    why = 'a symbolic link loop'
            else:
                why = 'a folder, not a file' if path.is_dir() else 'not a regular file'
            out[str(path)] = why
    return out


def split_by_extension(files: tp.Iterable[Path], exts: tp.Sequence[str],
                       companions: tp.Sequence[str] = ()) -> tp.Tuple[tp.List[Path], tp.Counter[str]]:
    """(files whose extension is in `exts`, Counter of the extensions of the others).

    A file with a `companions` extension beside a taken file of the same stem (its sidecar,
    video, caption) counts as used, not ignored.
    """
    files = list(files)
    exts = tuple(e.lower() for e in exts)
    taken = [p for p in files if p.suffix.lower() in exts]
    stems = {p.with_suffix('') for p in taken}
    companions = tuple(c.lower() for c in companions)
    ignored: tp.Counter[str] = collections.Counter(
        p.suffix.lower() or '(no extension)' for p in files
        if p.suffix.lower() not in exts and not (p.suffix.lower() in companions and p.with_suffix('') in stems))
    return taken, ignored


def describe_ignored(ignored: tp.Mapping[str, int], what: str = 'read here') -> str:
    """"3 files not taken (not read here): .aiff 2, .txt 1" or '' when there are none."""
    total = sum(ignored.values())
    if not total:
        return ''
    counts = ', '.join(f"{ext} {n}" for ext, n in sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{total} file{'s' if total != 1 else ''} not taken (extension not {what}): {counts}"
