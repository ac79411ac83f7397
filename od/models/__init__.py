"""Model loading and generation. `od.models.load(spec)` -> ODMusicGen (see loaders.load_model)."""


def load(spec: str, device=None, cache: bool = False):
    """Load a MusicGen from an od export, a make_ckpt output, `//sig/<sig>` or a hub id."""
    from .loaders import load_model
    return load_model(spec, device=device, cache=cache)
