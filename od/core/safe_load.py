"""Reading PyTorch files without ever running code from them.

A `.pt`/`.th`/`.bin` file is a pickle: loaded with full unpickling, a crafted one runs any code
it likes. od reads only with `torch.load(weights_only=True)` (tensors, plain containers,
numbers, strings), and od's commands (`environment.setup()`) set `TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`
so that libraries they call cannot fall back to full unpickling either (a program that only
imports od keeps torch's own default, weights-only unless a caller asks otherwise). A file that holds more than
that is refused with its name and the global it wanted; if the user trusts its weights, one
explicit step converts it into plain tensors (`python -m od.trust <file>`, which reads it with
`read_pickle_inertly`: other objects become placeholders, never imported or called), and od
then reads the result like any other. There is no silent fallback anywhere.
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
               allow_numpy: bool = False, mmap: bool = False, allow: tp.Sequence[tp.Any] = ()) -> tp.Any:
    """`torch.load(path, weights_only=True)`; every failure names the file and says what to do.

    `allow`: extra globals the file may name (classes whose construction runs only their
    library's own code, e.g. demucs' model class), on top of numpy scalars with `allow_numpy`.

    Raises UnsafeFileError for a file that wants to unpickle objects (nothing of it ran), and
    ValueError for one that is truncated or not a PyTorch file.
    """
    import torch
    path = Path(path)
    extra = (numpy_scalar_globals() if allow_numpy else []) + list(allow)
    try:
        with torch.serialization.safe_globals(extra) if extra else contextlib.nullcontext():
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        refused = _refused_global(exc) or str(exc).splitlines()[0][:120]
        raise UnsafeFileError(
            f"{path}: this {what} holds pickled Python objects, not only tensors and plain data "
            f"(it asks for {refused}). od never runs code from a file, so nothing of it was loaded. "
            f"If you trust its weights, convert it once into plain tensors with "
            f"`python -m od.trust {path}` and use the converted file.") from None
    except FileNotFoundError:
        raise
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as exc:
        if isinstance(exc, OSError) and not path.is_file():
            raise
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"{path} cannot be read as a {what} (truncated, or not a PyTorch file): {first}") from exc


class Dropped:
    """What an object of a class outside the allow-list becomes in `read_pickle_inertly`: a
    placeholder that records the global's name and swallows its arguments and state. Its class
    is made per global name; nothing of the real class is imported or called."""
    qualname = '?'

    def __new__(cls, *args: tp.Any, **kwargs: tp.Any) -> 'Dropped':
        return object.__new__(cls)

    def __init__(self, *args: tp.Any, **kwargs: tp.Any) -> None:
        pass

    def __call__(self, *args: tp.Any, **kwargs: tp.Any) -> 'Dropped':
        return type(self)()  # e.g. getattr(SomeClass, 'method') called in turn

    def __setstate__(self, state: tp.Any) -> None:
        pass

    def __setitem__(self, key: tp.Any, value: tp.Any) -> None:
        pass

    def append(self, value: tp.Any) -> None:
        pass

    def extend(self, values: tp.Any) -> None:
        pass


# Globals a PyTorch checkpoint's tensors and plain data are rebuilt from: the real objects are
# used (they run no code of the file's choosing). Everything else becomes a Dropped placeholder.
_REBUILD = {
    ('torch._utils', n) for n in ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3',
                                   '_rebuild_parameter', '_rebuild_parameter_with_state')}
_REBUILD |= {('collections', 'OrderedDict'), ('torch', 'Size'), ('torch', 'device'), ('_codecs', 'encode'),
             ('builtins', 'set'), ('builtins', 'frozenset'), ('builtins', 'complex'),
             ('numpy', 'dtype'), ('numpy', 'ndarray'), ('numpy.core.multiarray', 'scalar'),
             ('numpy._core.multiarray', 'scalar'), ('numpy.core.multiarray', '_reconstruct'),
             ('numpy._core.multiarray', '_reconstruct')}


def _inert_global(module: str, name: str) -> tp.Any:
    import importlib

    import numpy as np
    import torch
    if (module, name) in _REBUILD:
        if module.startswith('numpy.core.') and int(np.__version__.split('.')[0]) >= 2:
            module = module.replace('numpy.core.', 'numpy._core.')  # a numpy 1.x pickle
        return getattr(importlib.import_module(module), name)
    if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if module == 'numpy.dtypes' and name.endswith('DType') and hasattr(np.dtypes, name):
        return getattr(np.dtypes, name)
    return type(name, (Dropped,), {'__module__': module, 'qualname': f'{module}.{name}'})


def _inert_pickle_module() -> tp.Any:
    """A `pickle_module` for torch.load whose Unpickler never imports or calls what a file names
    (beyond the allow-list above); torch's own wrapper still resolves storages."""
    import types
    module = types.ModuleType('od_inert_pickle')

    class Unpickler(pickle.Unpickler):
        def find_class(self, mod_name: str, name: str) -> tp.Any:
            import _compat_pickle  # Python 2 names (protocol 2, torch's default), mapped as pickle's own find_class does
            if (mod_name, name) in _compat_pickle.NAME_MAPPING:
                mod_name, name = _compat_pickle.NAME_MAPPING[(mod_name, name)]
            mod_name = _compat_pickle.IMPORT_MAPPING.get(mod_name, mod_name)
            return _inert_global(mod_name, name)

    def load(file: tp.IO[bytes], **kwargs: tp.Any) -> tp.Any:
        return Unpickler(file, **kwargs).load()

    module.Unpickler, module.load = Unpickler, load  # type: ignore[attr-defined]
    module.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    return module


def read_pickle_inertly(path: tp.Union[str, Path]) -> tp.Any:
    """Read a PyTorch file of any content without running code from it: tensors, numpy arrays
    and plain data come back as such; every other object is a `Dropped` placeholder naming its
    class (never imported, never called). Raises ValueError for a file that is not a PyTorch file."""
    import torch
    saved = os.environ.pop(FORCE_SAFE, None)  # an explicit pickle_module needs weights_only=False
    try:
        return torch.load(path, map_location='cpu', weights_only=False, pickle_module=_inert_pickle_module())
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 — a malformed file fails in many ways; one message
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"{path} is not a PyTorch file (torch.save format) that od can read: {first}") from None
    finally:
        if saved is not None:
            os.environ[FORCE_SAFE] = saved


def _plain(obj: tp.Any, dropped: tp.List[str], where: str = '') -> tp.Any:
    """`obj` reduced to what `weights_only` loads: tensors, containers, Python numbers and
    strings. numpy scalars (np.float64 subclasses float, np.str_ str) become Python ones first,
    or the converted file would need numpy's globals to load."""
    import numpy as np
    import torch
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()  # a Parameter (or subclass) becomes a plain tensor
    if isinstance(obj, np.ndarray):
        if obj.dtype == object or obj.dtype.kind not in 'biufc':
            dropped.append(f'{where or "/"} (numpy array of {obj.dtype})')
            return _DROP
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        obj = obj.item()
    if type(obj) in (str, bytes, bool, int, float, type(None)):
        return obj
    for kind in (bool, int, float, str, bytes):  # other subclasses of the plain types
        if isinstance(obj, kind) and not isinstance(obj, Dropped):
            return kind(obj)
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            key = key.item() if isinstance(key, np.generic) else key
            if type(key) in (str, int):
                out[key] = _plain(value, dropped, f'{where}/{key}')
            else:
                dropped.append(f'{where}/{key!r} (a {type(key).__name__} key)')
        return {k: v for k, v in out.items() if v is not _DROP}
    if isinstance(obj, (list, tuple)):
        items = [_plain(v, dropped, f'{where}[{i}]') for i, v in enumerate(obj)]
        items = [v for v in items if v is not _DROP]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, torch.dtype):
        return obj
    placeholder = isinstance(obj, Dropped) or (isinstance(obj, type) and issubclass(obj, Dropped))
    name = obj.qualname if placeholder else f'{type(obj).__module__}.{type(obj).__qualname__}'
    dropped.append(f'{where or "/"} ({name})')
    return _DROP


_DROP = object()


class Conversion(tp.NamedTuple):
    """What `convert_trusted` wrote: counts of what it kept, and the paths of what it dropped."""
    tensors: int
    elements: int
    values: int
    dropped: tp.List[str]


def _count(obj: tp.Any) -> tp.Tuple[int, int, int]:
    import torch
    if isinstance(obj, torch.Tensor):
        return 1, obj.numel(), 0
    if isinstance(obj, (dict, list, tuple)):
        parts = [_count(v) for v in (obj.values() if isinstance(obj, dict) else obj)]
        return tuple(sum(p[i] for p in parts) for i in range(3))  # type: ignore[return-value]
    return 0, 0, 1


def convert_trusted(src: tp.Union[str, Path], dst: tp.Union[str, Path], overwrite: bool = False) -> Conversion:
    """Write the tensors and plain data of `src` to `dst`, which od then loads safely.

    `src` is read with `read_pickle_inertly`: no code of the file runs, whatever it holds; its
    other objects are dropped and listed. `dst` appears whole or not at all (atomic write, then
    checked with a weights-only load before it replaces anything); an existing `dst` is refused
    unless `overwrite`. Raises FileNotFoundError/PermissionError (OSError) for a file that cannot
    be read, FileExistsError, and ValueError for a file with nothing to keep or not a PyTorch file.
    """
    import torch

    from . import atomic
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} already exists: pass --force to replace it, or --out another path")
    with open(src, 'rb'):  # unreadable (permissions): say so before any work
        pass
    dropped: tp.List[str] = []
    plain = _plain(read_pickle_inertly(src), dropped)
    if plain is _DROP or _count(plain) == (0, 0, 0):
        raise ValueError(f"{src} holds no tensors or plain data to keep (only {', '.join(dropped[:3])}).")
    with atomic.atomic_path(dst) as tmp:
        torch.save(plain, tmp)
        torch_load(tmp, 'converted file')  # what is written loads the safe way
    return Conversion(*_count(plain), dropped)
