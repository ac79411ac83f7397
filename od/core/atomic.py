"""Atomic outputs: every file or folder od writes appears whole or not at all.

One protocol for checkpoints, caches, manifests, sidecars, exports and reports: write into a
temporary sibling whose name is unique to this process and attempt (`.<name>.<pid>-<rand>.tmp`
plus the real suffix, so tools that pick a format from the suffix still work), flush it to
disk, then `os.replace` it over the target. Concurrent writers never share a temporary name,
and a kill leaves at most a hidden `*.tmp` file that no reader takes for the real one;
`clean_stale` removes those left by processes that are gone.

Files get the permissions a plain `open()` would give under the user's umask (`mkstemp`'s 0600
and `mkdtemp`'s 0700 break shared team folders).

Imports no torch: usable from the TF side too.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import typing as tp
from pathlib import Path

PathLike = tp.Union[str, Path]
TMP_MARK = '.tmp'


class DiskFullError(OSError):
    """No space left where an output was being written. The message names the target."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def tmp_sibling(path: PathLike) -> Path:
    """A fresh temporary name next to `path`, unique to this process and call."""
    path = Path(path)
    return path.with_name(f'.{path.stem}.{os.getpid()}-{secrets.token_hex(4)}{TMP_MARK}{path.suffix}')


FULL_BELOW = 1 << 20  # a failed write with less free space than this on its device: a full disk


def nearly_full(folder: PathLike) -> bool:
    """Whether the device holding `folder` has less than FULL_BELOW bytes free."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < FULL_BELOW


def _raise_if_disk_full(exc: BaseException, target: Path, full: bool = False) -> None:
    """DiskFullError for ENOSPC/EDQUOT, and for writers that hide it (torch.save's
    'enforce fail at inline_container.cc', libsndfile's 'System error') when `full`: the device
    had (almost) no space left at the moment the write failed."""
    if getattr(exc, 'errno', None) in (errno.ENOSPC, errno.EDQUOT) or (full and isinstance(exc, Exception)):
        raise DiskFullError(errno.ENOSPC, f"No space left on the device holding {target.parent}: "
                                          f"{target.name} was not written (nothing half-written was left). "
                                          "Free some space and run the same command again.") from exc


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike, mode: tp.Optional[int] = None) -> tp.Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed.

    For writers that want a file name (ffmpeg, soundfile, torch.save, np.save)::

        with atomic_path(out) as tmp:
            sf.write(tmp, wav, sr)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer of {path} produced no file")
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        full = nearly_full(path.parent)  # measured before the temporary gives its space back
        tmp.unlink(missing_ok=True)
        _raise_if_disk_full(exc, path, full)
        raise


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = 'w', encoding: tp.Optional[str] = None) -> tp.Iterator[tp.IO]:
    """`open()` whose result appears at `path` only when the block finishes without error."""
    binary = 'b' in mode
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if binary else (encoding or 'utf-8')) as f:
            yield f
            f.flush()


def write_bytes(path: PathLike, data: bytes) -> Path:
    with atomic_open(path, 'wb') as f:
        f.write(data)
    return Path(path)


def write_text(path: PathLike, text: str) -> Path:
    with atomic_open(path, 'w') as f:
        f.write(text)
    return Path(path)


def write_json(path: PathLike, data: tp.Any, indent: tp.Optional[int] = 2) -> Path:
    """JSON (finite numbers only: NaN/Inf are refused rather than written as invalid JSON)."""
    return write_text(path, json.dumps(data, indent=indent, allow_nan=False) + '\n')


def torch_save(obj: tp.Any, path: PathLike) -> Path:
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def np_save(path: PathLike, array: tp.Any) -> Path:
    import numpy as np
    with atomic_open(path, 'wb') as f:
        np.save(f, np.asarray(array), allow_pickle=False)
    return Path(path)


def np_savez(path: PathLike, **arrays: tp.Any) -> Path:
    import numpy as np
    with atomic_open(path, 'wb') as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: PathLike, overwrite: bool = False) -> tp.Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes `path` (replacing an existing one
    only with `overwrite`), on error it is removed. Folder mode follows the umask."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TMP_MARK}')
    tmp.mkdir(mode=0o777 & ~_umask())
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f'.{path.name}.{os.getpid()}-{secrets.token_hex(4)}.old')
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        full = nearly_full(path.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_if_disk_full(exc, path, full)
        raise


_TMP_NAME = re.compile(r'\.(\d+)-[0-9a-f]{8}(?:\.tmp|\.old$)')


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: PathLike, recursive: bool = False) -> int:
    """Remove temporaries of `atomic_*` left in `folder` by processes that no longer run.

    Returns how many were removed. Temporaries of live processes (another writer at work)
    are left alone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    entries = folder.rglob('.*') if recursive else folder.glob('.*')
    for entry in list(entries):
        match = _TMP_NAME.search(entry.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def write_wav(path: PathLike, wav: tp.Any, sample_rate: int, subtype: str = 'PCM_16') -> Path:
    """A wav ([T] or [T, C] float samples) written atomically; concurrent writers never share a
    temporary name."""
    import soundfile as sf
    with atomic_path(path) as tmp:
        sf.write(tmp, wav, int(sample_rate), subtype=subtype, format='WAV')
    return Path(path)
