"""The concept app's Gradio page: concepts and training arguments, Start / Stop, loss and metrics per
epoch, generation with the learned embeddings (od.workflow.app_jobs.ConceptApp does the work)."""
from __future__ import annotations

import tempfile
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
