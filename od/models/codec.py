"""The compression model, built exactly as training builds it, and a fingerprint to check it.

AudioCraft's `//pretrained/debug_compression_model` is random: its weights depend on the RNG
state when it is built. od's MusicGen solver builds it right after `torch.manual_seed(cfg.seed)`
(od/solvers/musicgen.py), so `build_compression_model(spec, seed=cfg.seed)` gives the same codec
in another process (dataset prep, evaluation). Tokens cached by one codec are meaningless to
another: `fingerprint` lets a consumer refuse them with a clear message.
"""
from __future__ import annotations

import hashlib
import typing as tp

import torch

from .loaders import resolve_compression_checkpoint


def build_compression_model(spec: str, seed: int, device: str = 'cpu',
                            n_q: tp.Optional[int] = None):
    """AudioCraft CompressionModel for a `compression_model_checkpoint` value, built offline."""
    from audiocraft.solvers.compression import CompressionSolver

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CompressionSolver.model_from_checkpoint(resolve_compression_checkpoint(spec), device)
    if n_q is not None:
        model.set_num_codebooks(n_q)
    return model.eval()


def fingerprint(model: torch.nn.Module) -> str:
    """Short hash of a model's weights (names, shapes and values)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to('cpu', torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
