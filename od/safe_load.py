"""Reading PyTorch files without ever running code from them.

A `.pt`/`.th`/`.bin` file is a pickle: loaded with full unpickling, a crafted one runs any code
it likes. od reads only with `torch.load(weights_only=True)` (tensors, plain containers,
numbers, strings), and `environment.setup()` sets `TORCH_FORCE_WEIGHTS_ONLY_LOAD=1` so that
libraries od calls cannot fall back to full unpickling either. A file that holds more than
that is refused with its name and the global it wanted; if the user trusts it, one explicit
step converts it into plain tensors (`python -m od.trust <file>`), which od then reads like any
other. There is no silent fallback anywhere.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import re
import typing as tp
from pathlib import Path

FORCE_SAFE = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'
FORCE_UNSAFE = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'


class UnsafeFileError(ValueError):
    """A file holds pickled Python objects beyond tensors and plain data; it was not loaded."""


def numpy_scalar_globals() -> tp.List[tp.Any]:
    """Globals of numpy scalars and dtypes (training scripts often save a metric as np.float64):
    rebuilding one runs no user code. Pickles from numpy 1.x name `numpy.core`, numpy 2 `numpy._core`."""
    import numpy as np
    multiarray = getattr(np, '_core', np.core).multiarray
    out: tp.List[tp.Any] = [np.dtype, (multiarray.scalar, 'numpy.core.multiarray.scalar'),
                            (multiarray.scalar, 'numpy._core.multiarray.scalar')]
    for name in ('Float64DType', 'Float32DType', 'Int64DType', 'Int32DType', 'BoolDType'):
        if hasattr(np, 'dtypes') and hasattr(np.dtypes, name):
            out.append(getattr(np.dtypes, name))
    return out


def _refused_global(exc: BaseException) -> tp.Optional[str]:
    match = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(exc))
    if match:
        return match.group(1)
    match = re.search(r'Unsupported operand|Unsupported class|Trying to call reduce|unsupported', str(exc), re.I)
    return match.group(0) if match else None


def torch_load(path: tp.Union[str, Path], what: str = 'checkpoint', map_location: tp.Any = 'cpu',
               allow_numpy: bool = False, mmap: bool = False) -> tp.Any:
    """`torch.load(path, weights_only=True)`; every failure names the file and says what to do.

    Raises UnsafeFileError for a file that wants to unpickle objects (nothing of it ran), and
    ValueError for one that is truncated or not a PyTorch file.
    """
    import torch
    path = Path(path)
    extra = numpy_scalar_globals() if allow_numpy else []
    try:
        with torch.serialization.safe_globals(extra) if extra else contextlib.nullcontext():
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        refused = _refused_global(exc) or str(exc).splitlines()[0][:120]
        raise UnsafeFileError(
            f"{path}: this {what} holds pickled Python objects, not only tensors and plain data "
            f"(it asks for {refused}). od never runs code from a file, so nothing of it was loaded. "
            f"If you trust where it came from, convert it once into plain tensors with "
            f"`python -m od.trust {path}` and use the converted file.") from None
    except FileNotFoundError:
        raise
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as exc:
        if isinstance(exc, OSError) and not path.is_file():
            raise
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"{path} cannot be read as a {what} (truncated, or not a PyTorch file): {first}") from exc


def _plain(obj: tp.Any, dropped: tp.List[str], where: str = '') -> tp.Any:
    """`obj` reduced to what `weights_only` loads: tensors, containers, numbers, strings."""
    import numpy as np
    import torch
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, (str, bytes, bool, int, float, type(None))):
        return obj
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if isinstance(key, (str, int)):
                out[key] = _plain(value, dropped, f'{where}/{key}')
            else:
                dropped.append(f'{where}/{key!r}')
        return {k: v for k, v in out.items() if v is not _DROP}
    if isinstance(obj, (list, tuple)):
        items = [_plain(v, dropped, f'{where}[{i}]') for i, v in enumerate(obj)]
        items = [v for v in items if v is not _DROP]
        return items if isinstance(obj, list) else tuple(items)
    dropped.append(f'{where or "/"} ({type(obj).__module__}.{type(obj).__qualname__})')
    return _DROP


_DROP = object()


def convert_trusted(src: tp.Union[str, Path], dst: tp.Union[str, Path]) -> tp.List[str]:
    """Load `src` with FULL unpickling (its code runs: only for files the user trusts) and write
    its tensors and plain data to `dst` (atomically), which od then loads safely.

    Returns the paths of the objects that were dropped (anything that is not plain data).
    """
    import torch

    from . import atomic
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    saved = os.environ.pop(FORCE_SAFE, None)
    try:
        obj = torch.load(src, map_location='cpu', weights_only=False)
    finally:
        if saved is not None:
            os.environ[FORCE_SAFE] = saved
    dropped: tp.List[str] = []
    plain = _plain(obj, dropped)
    if plain is _DROP:
        raise ValueError(f"{src} holds no tensors or plain data to keep ({dropped[0]}).")
    atomic.torch_save(plain, dst)
    torch_load(dst, 'converted file')  # what was written loads the safe way
    return dropped


@contextlib.contextmanager
def hash_checked_upstream_pickles(reason: str) -> tp.Iterator[None]:
    """Let a library load its own pickled weights in this block (e.g. demucs, whose packages
    pickle their model class; torch.hub checks their hash when it downloads them). `reason`
    documents the call site; od's own reads never use this."""
    saved = os.environ.pop(FORCE_SAFE, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[FORCE_SAFE] = saved
