"""Compression models as self-contained packages: weights *and* the config that rebuilds them.

AudioCraft's export of a pretrained codec stores only its name (`{'pretrained': name}`), so an
export trained on AudioCraft's random debug EnCodec (rebuilt from the RNG) or on a hub EnCodec
(needs the HF cache) cannot be used elsewhere. od's `compression_state_dict.bin` holds the
weights and what rebuilds the module, in one of three kinds:

  - `debug`: AudioCraft's `get_debug_compression_model(sample_rate=...)` + its trained state;
  - `hf_encodec`: a transformers `EncodecConfig` dict + state (also `pretrained: <hub id>`,
    so AudioCraft's own loader can still read the file from the hub cache);
  - `audiocraft`: an EnCodec trained with AudioCraft's compression solver: `xp.cfg` + state
    (exactly AudioCraft's `export_encodec` format).

`load_compression_package` reads those and AudioCraft's `{'pretrained': name}` files (upstream
MusicGen releases), the latter resolved offline through od's weight lookup.

AudioCraft accepts `compression_model_checkpoint` values of three kinds: `//pretrained/<name>`
(a built-in debug model, an AudioCraft export folder, or a hub id), a Dora `//sig/<sig>`, or a
checkpoint path. `resolve_compression_checkpoint` turns each into a value AudioCraft can load
*offline*, or raises `MissingWeightsError` naming the file and where to put it.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..core.environment import MissingWeightsError, hf_cached, missing_weights, reference_dir, resolve_reference
from ..core.safe_load import torch_load

# Models AudioCraft builds itself, without any file.
BUILTIN_COMPRESSION = ('debug_compression_model',)
ENCODEC_WEIGHTS = ('model.safetensors', 'pytorch_model.bin')
EXPORTED_COMPRESSION = 'compression_state_dict.bin'  # AudioCraft's export format (od.export)


def resolve_compression_checkpoint(spec: str) -> str:
    """Map a `compression_model_checkpoint` value to one that loads without network."""
    spec = str(spec)
    if spec.startswith('//pretrained/'):
        name = spec[len('//pretrained/'):]
        if name in BUILTIN_COMPRESSION:
            return spec
        if name.startswith('//reference/'):
            name = str(resolve_reference(name))
        if Path(name).exists():
            if Path(name).is_dir() and not (Path(name) / EXPORTED_COMPRESSION).exists():
                raise MissingWeightsError(f"{Path(name) / EXPORTED_COMPRESSION} not found: an exported "
                                          "compression model folder must hold that file (see od.export).")
            return '//pretrained/' + name
        # A hub id: the reference folder may hold an AudioCraft export of it, else the HF cache.
        exported = reference_dir() / name
        if (exported / EXPORTED_COMPRESSION).exists():
            return '//pretrained/' + str(exported)
        if hf_cached(name, required=('config.json',), any_of=ENCODEC_WEIGHTS) is not None:
            return spec  # HF_HUB_OFFLINE=1 (set by od) makes from_pretrained read the cache
        raise missing_weights(name, ['config.json', ' or '.join(ENCODEC_WEIGHTS)],
                              reference_files=[EXPORTED_COMPRESSION + ' (an AudioCraft export)'])
    if spec.startswith('//sig/'):
        return spec
    path = resolve_reference(spec)
    if not path.exists():
        raise MissingWeightsError(f"Compression model checkpoint not found: {path} (from {spec}). "
                                  "Use //pretrained/debug_compression_model for a tiny random one.")
    return str(path)


KIND = 'od.compression'  # key holding {'kind': ..., ...} in an od package


def build_compression_model(spec: str, seed: tp.Optional[int] = None, device: str = 'cpu'):
    """The compression model a solver builds for `compression_model_checkpoint=spec`.

    AudioCraft's debug model is random: with `seed` it is built under that seed (od's solver
    builds it under the XP seed), leaving the caller's RNG untouched.
    """
    from audiocraft.solvers.compression import CompressionSolver
    with torch.random.fork_rng():
        if seed is not None:
            torch.manual_seed(seed)
        return CompressionSolver.model_from_checkpoint(resolve_compression_checkpoint(spec), device)


def compression_package(model, spec: str) -> dict:
    """Self-contained package of `model`, built from `compression_model_checkpoint=spec`."""
    from audiocraft import __version__
    from audiocraft.models.encodec import EncodecModel, HFEncodecCompressionModel

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    pkg: tp.Dict[str, tp.Any] = {'best_state': state, 'exported': True, 'version': __version__,
                                 'od.source': str(spec)}
    name = str(spec)[len('//pretrained/'):] if str(spec).startswith('//pretrained/') else None
    if name == 'debug_compression_model':
        pkg[KIND] = {'kind': 'debug', 'sample_rate': int(model.sample_rate)}
    elif isinstance(model, HFEncodecCompressionModel):
        pkg[KIND] = {'kind': 'hf_encodec', 'config': model.model.config.to_dict()}
        if name is not None and not Path(name).exists():
            pkg['pretrained'] = name
    elif isinstance(model, EncodecModel):
        cfg = _audiocraft_compression_cfg(spec)
        pkg[KIND] = {'kind': 'audiocraft'}
        pkg['xp.cfg'] = OmegaConf.to_yaml(cfg)
    else:
        raise ValueError(f"Cannot package a {type(model).__name__} compression model (from {spec}): "
                         "od exports AudioCraft EnCodec models and Hugging Face EnCodec.")
    return pkg


def _audiocraft_compression_cfg(spec: str):
    """Config of an EnCodec trained with AudioCraft (checkpoint, //sig/, or an exported file)."""
    from audiocraft.utils import checkpoint
    resolved = resolve_compression_checkpoint(spec)
    if resolved.startswith('//pretrained/'):
        path = Path(resolved[len('//pretrained/'):])
        path = path / 'compression_state_dict.bin' if path.is_dir() else path
        pkg = torch_load(path, 'compression model')
        if 'xp.cfg' not in pkg:
            raise ValueError(f"{path} has no xp.cfg: cannot say how to rebuild its compression model.")
        return OmegaConf.create(pkg['xp.cfg'])
    path = checkpoint.resolve_checkpoint_path(resolved, use_fsdp=False)
    pkg = torch_load(path, 'compression checkpoint')
    if not isinstance(pkg, dict) or 'xp.cfg' not in pkg:
        raise ValueError(f"{path} has no xp.cfg: cannot say how to rebuild its compression model.")
    return OmegaConf.create(pkg['xp.cfg'])


def load_compression_package(pkg: dict, device: str = 'cpu'):
    """Compression model of a package: od's kinds, AudioCraft exports, or `{'pretrained': name}`."""
    from audiocraft.models import builders
    from audiocraft.models.encodec import CompressionModel, HFEncodecCompressionModel

    info = pkg.get(KIND)
    if info is None and 'pretrained' in pkg:  # an upstream reference to a pretrained codec
        spec = resolve_compression_checkpoint('//pretrained/' + pkg['pretrained'])
        return CompressionModel.get_pretrained(spec[len('//pretrained/'):], device=device)
    kind = (info or {}).get('kind', 'audiocraft')
    if kind == 'debug':
        model = builders.get_debug_compression_model(device, sample_rate=info['sample_rate'])
    elif kind == 'hf_encodec':
        from transformers import EncodecConfig
        from transformers import EncodecModel as HFEncodecModel
        model = HFEncodecCompressionModel(HFEncodecModel(EncodecConfig.from_dict(info['config'])))
    elif 'xp.cfg' in pkg:
        cfg = OmegaConf.create(pkg['xp.cfg'])
        cfg.device = str(device)
        model = builders.get_compression_model(cfg)
    else:
        raise ValueError("Not a compression model package: it has neither 'od.compression', "
                         "'xp.cfg' nor 'pretrained'.")
    model.load_state_dict(pkg['best_state'])
    return model.to(device).eval()


def fingerprint(model: torch.nn.Module) -> str:
    """Short hash of a model's weights (names, shapes, values): tokens cached with one codec are
    meaningless to another, so consumers of cached tokens compare this (od.concepts)."""
    import hashlib
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to('cpu', torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
