"""demucs' htdemucs (the melody conditioner's stem separator), loaded without running a file's code.

AudioCraft's `chroma_stem` conditioner calls `demucs.pretrained.get_model('htdemucs')`, which
reads either of two files, and both can make demucs run code of the file's choosing:

- the Hugging Face hub repo `adefossez/HTDemucs` (demucs 4.1's first choice): a safetensors file
  whose metadata names the model class as text; demucs imports and calls whatever it names;
- the torch hub file `<torch hub>/checkpoints/955717e8-8726e21a.th`: a pickle of the model class,
  its arguments and weights, which demucs reads with full unpickling.

`load_htdemucs` reads the same files itself: the safetensors metadata must name demucs' model
class (nothing else is imported), and the pickle is read weights-only with exactly the globals
that file holds allow-listed (`demucs.htdemucs.HTDemucs`, `fractions.Fraction`; building them runs
only demucs' and Python's own code). Anything else is refused with the file's name.
`serving_htdemucs()` makes AudioCraft's call go through it (od/conditioners/hooks.py lists that hook).
Nothing is downloaded: a missing file stops with where to put it.
"""
from __future__ import annotations

import contextlib
import json
import typing as tp
from pathlib import Path

NAME = 'htdemucs'
HF_REPO = 'adefossez/HTDemucs'
MODEL_CLASSES = ('demucs.htdemucs.HTDemucs',)
HF_CACHE_DIR: tp.Optional[Path] = None  # None: the Hugging Face default (HF_HOME / HF_HUB_CACHE)


def _bag_definition() -> dict:
    import yaml
    from demucs import pretrained
    return yaml.safe_load((pretrained.REMOTE_ROOT / f'{NAME}.yaml').read_text())


def torch_hub_file(sig: str) -> Path:
    """Where torch.hub keeps the legacy file of model `sig` (demucs' files.txt names it)."""
    import torch
    from demucs import pretrained
    for line in (pretrained.REMOTE_ROOT / 'files.txt').read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(('#', 'root:')) and line.split('-', 1)[0] == sig:
            return Path(torch.hub.get_dir()) / 'checkpoints' / line
    raise ValueError(f"demucs' files.txt lists no file for model {sig}")


def _hf_cached(filename: str) -> tp.Optional[Path]:
    from huggingface_hub import try_to_load_from_cache
    found = try_to_load_from_cache(HF_REPO, filename, cache_dir=HF_CACHE_DIR)
    return Path(found) if isinstance(found, str) else None


def _check_class_names(path: Path, names: tp.Iterable[str]) -> None:
    from ..core.safe_load import UnsafeFileError
    bad = sorted(set(names) - set(MODEL_CLASSES))
    if bad:
        raise UnsafeFileError(f"{path}: this demucs file names {', '.join(bad)} as code to run, not demucs' "
                              f"model class ({', '.join(MODEL_CLASSES)}); it was not loaded. Replace it with "
                              f"the file from {HF_REPO} or demucs' own download.")


def _from_safetensors(path: Path) -> tp.Any:
    from demucs.hf import load_safetensors_model
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as file:
        metadata = file.metadata() or {}
    names = [metadata.get('klass', '<none>')]

    def classes(node: tp.Any) -> tp.Iterator[str]:
        if isinstance(node, dict):
            if '_class' in node:
                yield str(node['_class'])
            for value in node.values():
                yield from classes(value)
        elif isinstance(node, list):
            for value in node:
                yield from classes(value)
    if 'structure' in metadata:
        names += list(classes(json.loads(metadata['structure'])))
    _check_class_names(path, names)
    return load_safetensors_model(path)


def _from_pickle(path: Path) -> tp.Any:
    from fractions import Fraction

    from demucs.htdemucs import HTDemucs
    from demucs.states import load_model

    from ..core.safe_load import torch_load
    package = torch_load(path, 'demucs model', allow=[HTDemucs, Fraction])
    klass = package.get('klass') if isinstance(package, dict) else None
    if klass is not HTDemucs:
        _check_class_names(path, [getattr(klass, '__qualname__', repr(klass))])
    return load_model(package)


def load_htdemucs() -> tp.Any:
    """demucs' `htdemucs` bag of models, from the Hugging Face cache or the torch hub cache."""
    from demucs.apply import BagOfModels

    from ..core.environment import MissingWeightsError
    bag = _bag_definition()
    models = []
    for sig in bag['models']:
        safetensors, legacy = _hf_cached(f'{sig}.safetensors'), torch_hub_file(sig)
        if safetensors is not None:
            models.append(_from_safetensors(safetensors))
        elif legacy.is_file():
            models.append(_from_pickle(legacy))
        else:
            raise MissingWeightsError(
                f"demucs' {NAME} (model {sig}), which the chroma_stem (melody) conditioner needs, is not on "
                f"this machine. Put {sig}.safetensors and {NAME}.yaml of the Hugging Face repo {HF_REPO} in "
                f"the HF cache, or demucs' file at {legacy}.")
    return BagOfModels(models, bag.get('weights'), bag.get('segment')).eval()


@contextlib.contextmanager
def serving_htdemucs() -> tp.Iterator[None]:
    """While the block runs, `demucs.pretrained.get_model('htdemucs')` is `load_htdemucs()`
    (AudioCraft's ChromaStemConditioner calls it in its __init__); other names are refused."""
    from demucs import pretrained
    upstream = pretrained.get_model

    def get_model(name: str, repo: tp.Optional[Path] = None) -> tp.Any:
        if name != NAME or repo is not None:
            raise ValueError(f"od loads only demucs' {NAME} (asked for {name!r})")
        return load_htdemucs()
    pretrained.get_model = get_model
    try:
        yield
    finally:
        pretrained.get_model = upstream
