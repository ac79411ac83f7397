"""Where weights come from, decided once for training and inference alike.

AudioCraft accepts `compression_model_checkpoint` values of three kinds: `//pretrained/<name>`
(a built-in debug model, an AudioCraft export folder, or a hub id), a Dora `//sig/<sig>`, or a
checkpoint path. `resolve_compression_checkpoint` turns each into a value AudioCraft can load
*offline*, or raises `MissingWeightsError` naming the file and where to put it.
"""
from __future__ import annotations

from pathlib import Path

from ..environment import MissingWeightsError, hf_cached, missing_weights, reference_dir, resolve_reference

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
