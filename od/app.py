"""Concept app: train textual inversion on a prepared concept dataset and generate with it.

    python -m od.app --dataset egs/<name> --embeds checkpoints/concepts/<name> \
        [dora overrides, default: solver=musicgen/textual_inversion]

Choose concepts and training arguments (defaults from the config), Start / Stop training (Stop
ends the run and frees its model), watch loss and metrics per epoch, then generate with the
learned embeddings saved under --embeds (Refresh lists new ones). Serves on 127.0.0.1 unless
--host says otherwise; any other host needs --auth user:password (Gradio's login).
"""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import sys
import typing as tp


def is_local(host: str) -> bool:
    """Whether `host` is a loopback interface (only this machine can connect)."""
    import ipaddress
    if host in ('localhost', ''):
        return host == 'localhost'
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(value: str) -> tp.Tuple[str, str]:
    user, sep, password = value.partition(':')
    if not sep or not user or not password:
        raise ValueError("--auth must be user:password (both non-empty)")
    return user, password


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.app', description=__doc__.split('\n\n')[0],
        epilog="example: python -m od.app --dataset egs/example_concepts --embeds "
               "checkpoints/concepts/example_concepts solver=musicgen/textual_inversion "
               "continue_from=checkpoints/small_t5.th")
    parser.add_argument('--dataset', required=True, help="prepared concept dataset (egs/<name>)")
    parser.add_argument('--embeds', required=True, help="folder for learned embeddings (checkpoints/concepts/<name>)")
    parser.add_argument('--host', default='127.0.0.1',
                        help="interface to serve on (default: %(default)s, this machine only)")
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument('--auth', default=None, metavar='USER:PASSWORD',
                        help="require this login (needed when --host is not local); or set OD_APP_AUTH")
    parser.add_argument('overrides', nargs='*', help="dora run overrides of every training run "
                        "(default: solver=musicgen/textual_inversion)")
    args = parser.parse_args(argv)
    import os
    auth = args.auth or os.environ.get('OD_APP_AUTH')
    try:
        credentials = parse_auth(auth) if auth else None
    except ValueError as exc:
        parser.error(str(exc))
    if credentials is None and not is_local(args.host):
        parser.error(f"--host {args.host} serves the app beyond this machine: give --auth user:password "
                     "(anyone who reaches it could start training runs and read generated audio).")
    from . import train  # noqa: F401  (Dora's main, bound for the app's jobs)
    from .workflow.app_jobs import ConceptApp
    from .workflow.app_ui import build_ui
    overrides = args.overrides or ['solver=musicgen/textual_inversion']
    try:
        app = ConceptApp(args.dataset, args.embeds, overrides)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    demo = build_ui(app)
    try:
        demo.launch(server_name=args.host, server_port=args.port, show_error=True, auth=credentials)
    finally:
        app.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
