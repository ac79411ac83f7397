"""Model loading and generation. `od.inference.load(spec)` -> ODMusicGen (see loaders.load_model)."""


def load(spec: str, device=None, cache: bool = False, plugins=()):
    """Load a MusicGen from an od export, a make_ckpt output, `//sig/<sig>` or a hub id.

    `plugins`: modules you trust that register conditioners the model needs (never taken from
    the model's own files)."""
    from .loaders import load_model
    return load_model(spec, device=device, cache=cache, plugins=plugins)
