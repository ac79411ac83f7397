"""The `prep` command: argument parsing for od.workflow.prep (what it does is documented there)."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import sys
import typing as tp

from .workflow.prep import USAGE, prepare


def parse(argv: tp.Sequence[str]) -> tp.Tuple[tp.List[str], bool, int]:
    """(Dora overrides, --tokens, --token-epochs) from the command line."""
    overrides, tokens, epochs = [], False, 1
    items = list(argv)
    while items:
        item = items.pop(0)
        if item == '--tokens':
            tokens = True
        elif item == '--token-epochs' or item.startswith('--token-epochs='):
            value = item.split('=', 1)[1] if '=' in item else (items.pop(0) if items else '')
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"--token-epochs needs a whole number >= 1, got {value!r}")
            epochs, tokens = int(value), True
        elif item.startswith('--'):
            raise ValueError(f"unknown option {item} (options: --tokens, --token-epochs N; the rest are Dora overrides)")
        else:
            overrides.append(item)
    return overrides, tokens, epochs


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(USAGE)
        print("example: python -m od.prep solver=musicgen/debug conditioner=clipemb2music dset=audio/colors")
        return 0
    from . import train  # noqa: F401  (Dora's main, bound for the workflow: it composes the configs)
    from .conditioners.registry import PluginRequiredError
    from .core.environment import ConfigError, MissingWeightsError
    from .data.manifest import ManifestError
    try:
        overrides, tokens, epochs = parse(argv)
        report = prepare(overrides, tokens=tokens, token_epochs=epochs)
    except (ConfigError, MissingWeightsError, PluginRequiredError, FileNotFoundError, ManifestError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not report:
        print("No conditioner of this config caches embeddings (e.g. conditioner=clipemb2music or clapemb2music).")
    for attribute, counts in report.items():
        if attribute == 'tokens':
            print(f"codec tokens: {counts['batches']} batches ({counts['samples']} segments, {counts['epochs']} "
                  f"epoch(s)) in {counts['folder']}; train with cache.path={counts['folder']}")
            continue
        print(f"{attribute}: {counts['items']} {counts['unit']}s, {counts['cached_before']} already cached, "
              f"{counts['embedded']} embedded now, {counts['failed']} skipped")
    unwritten = {a: c for a, c in report.items() if c.get('unwritten')}  # (the token report has none)
    for attribute, counts in unwritten.items():  # od.prep's one job is the cache: a full disk is a failure
        print(f"error: {attribute}: {counts['unwritten']} cache entries could not be written under {counts['cache']} "
              "(see the warning above: a full disk?); free space or set cache_dir elsewhere, then run the "
              "same command again (entries already written are kept).", file=sys.stderr)
    return 1 if unwritten else 0


if __name__ == '__main__':
    sys.exit(main())
