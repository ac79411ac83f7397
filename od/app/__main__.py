"""Concept app: train textual inversion on a prepared concept dataset and generate with it.

    python -m od.app --dataset egs/<name> --embeds checkpoints/concepts/<name> \\
        [dora overrides, default: solver=musicgen/textual_inversion]

Choose concepts and training arguments (defaults from the config), Start / Stop training (Stop
ends the run and frees its model), watch loss and metrics per epoch, then generate with the
learned embeddings saved under --embeds (Refresh lists new ones). Serves on 127.0.0.1 unless
--host says otherwise; any other host needs --auth user:password (Gradio's login).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import typing as tp
from pathlib import Path


def build_ui(app):
    """The Gradio Blocks; every button is also an API endpoint (api_name) for gradio_client."""
    import gradio as gr
    import pandas as pd

    def status():
        line, rows = app.status()
        frame = pd.DataFrame(rows, columns=['epoch', 'metric', 'value'])
        loss = frame[frame.metric.str.endswith('/ce')]
        other = frame[~frame.metric.str.endswith('/ce')]
        return line, loss, other

    def start(concepts, tokens_num, lr, epochs, updates, batch_size):
        return app.start(concepts, tokens_num, lr, epochs, updates, batch_size)

    def refresh():
        files = app.embeddings()
        return gr.Dropdown(choices=files, value=files[:1])

    out_dir = Path(tempfile.mkdtemp(prefix='od-app-'))

    def generate(files, prompt, duration):
        if isinstance(files, str):
            files = [files]
        try:
            index = len(list(out_dir.iterdir()))
            return str(app.generate(files or [], prompt, duration, out_dir / f'sample_{index}')), "Generated."
        except (ValueError, FileNotFoundError) as exc:
            return None, f"Error: {exc}"

    d = app.defaults
    with gr.Blocks(title='od concepts') as demo:
        gr.Markdown(f"## Textual inversion — dataset `{app.dataset}`, embeddings `{app.embeds}`")
        with gr.Row():
            with gr.Column():
                concepts = gr.CheckboxGroup(app.concepts, value=app.concepts, label='Concepts')
                tokens_num = gr.Number(d['tokens_num'], precision=0, label='Tokens per concept')
                lr = gr.Number(d['lr'], label='Learning rate')
                epochs = gr.Number(d['epochs'], precision=0, label='Epochs')
                updates = gr.Number(d['updates_per_epoch'], precision=0, label='Updates per epoch')
                batch_size = gr.Number(d['batch_size'], precision=0, label='Batch size')
                with gr.Row():
                    start_btn = gr.Button('Start training', variant='primary')
                    stop_btn = gr.Button('Stop training')
                message = gr.Textbox(label='Status', lines=3)
            with gr.Column():
                loss_plot = gr.LinePlot(x='epoch', y='value', color='metric', title='Loss (cross-entropy)')
                metric_plot = gr.LinePlot(x='epoch', y='value', color='metric', title='Metrics')
        with gr.Row():
            with gr.Column():
                files = gr.Dropdown(app.embeddings(), multiselect=True, label='Learned embeddings')
                refresh_btn = gr.Button('Refresh learned embeddings')
                prompt = gr.Textbox(f"music in the style of <{app.concepts[0]}>", label='Prompt')
                duration = gr.Number(5.0, label='Seconds')
                gen_btn = gr.Button('Generate', variant='primary')
            with gr.Column():
                # A file, not gr.Audio: Gradio's audio output needs ffprobe, which the static ffmpeg
                # that install.sh may link does not include.
                audio = gr.File(label='Generated (wav)')
                gen_message = gr.Textbox(label='Generation')
        start_btn.click(start, [concepts, tokens_num, lr, epochs, updates, batch_size], message, api_name='start')
        stop_btn.click(app.stop, None, message, api_name='stop')
        refresh_btn.click(refresh, None, files, api_name='refresh')
        gen_btn.click(generate, [files, prompt, duration], [audio, gen_message], api_name='generate')
        gr.Timer(2.0).tick(status, None, [message, loss_plot, metric_plot], api_name='status')
    return demo


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
    from .. import environment
    environment.setup()
    from .jobs import ConceptApp
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
