"""Apache Beam pipeline: audio files -> VGGish embeddings per file + the set's Gaussian stats.

    files --Reshuffle--> EmbedFile (load, mono 16 kHz, log-mel, VGGish) --> embeddings/<i>.npy
                                    \--> failed/<i>.txt (bad file: named, skipped, counted)
          embeddings --CombineGlobally(sum, sum of outer products)--> stats.npz (mu, sigma, n)

Memory stays flat in the number of files: each worker holds one file's embeddings and one
[D, D] accumulator. Locally it runs on the DirectRunner with several worker processes; the same
pipeline runs on any Beam runner (pass its options after `--`). Imports no torch.
"""
from __future__ import annotations

import json
import os
import shutil
import typing as tp
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from ..metrics.fad import save_stats  # numpy-only: shared with the main environment

EMBEDDINGS = 'embeddings'
FAILED = 'failed'
STATS = 'stats.npz'
SUMMARY = 'summary.json'


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + '.tmp.npy')
    np.save(tmp, array)
    os.replace(tmp, path)


class EmbedFile(beam.DoFn):
    """(index, path) -> [N, 128] embeddings of that file; bad files go to the `failed` output."""

    def __init__(self, checkpoint: str, out_dir: str, pca_params: tp.Optional[str] = None):
        self.checkpoint, self.out_dir, self.pca_params = checkpoint, out_dir, pca_params

    def setup(self):
        from .vggish import Embedder  # one TF session per worker, reused for every file
        self.embedder = Embedder(self.checkpoint, self.pca_params)

    def process(self, item):
        from .frontend import MIN_SECONDS, load_audio, waveform_to_examples
        index, path = item
        try:
            wav, sr = load_audio(path)
            examples = waveform_to_examples(wav, sr)  # [N, 96, 64]
            if len(examples) == 0:
                raise ValueError(f"too short: {wav.shape[0] / sr:.3f} s < {MIN_SECONDS:.3f} s "
                                 "(one 0.96 s VGGish example)")
            emb = self.embedder.embed(examples)  # [N, 128]
        except Exception as exc:  # a bad file is reported and skipped, never fatal
            message = f"{path}: {type(exc).__name__}: {exc}"
            (Path(self.out_dir) / FAILED / f'{index:07d}.txt').write_text(message)
            yield beam.pvalue.TaggedOutput(FAILED, message)
            return
        _atomic_save(Path(self.out_dir) / EMBEDDINGS / f'{index:07d}.npy', emb.astype(np.float32))
        yield emb

    def teardown(self):
        if getattr(self, 'embedder', None) is not None:
            self.embedder.close()


class GaussianStats(beam.CombineFn):
    """Accumulates (n, sum [D], sum of x x^T [D, D]) in float64; merges across workers."""

    def create_accumulator(self):
        return 0, None, None

    def add_input(self, acc, emb):
        n, s, ss = acc
        emb = np.asarray(emb, dtype=np.float64)
        if s is None:
            s, ss = np.zeros(emb.shape[1]), np.zeros((emb.shape[1], emb.shape[1]))
        return n + len(emb), s + emb.sum(0), ss + emb.T @ emb

    def merge_accumulators(self, accs):
        accs = [a for a in accs if a[1] is not None]
        if not accs:
            return self.create_accumulator()
        return (sum(a[0] for a in accs), sum(a[1] for a in accs), sum(a[2] for a in accs))

    def extract_output(self, acc):
        return acc


def write_stats(acc, path: str, random_init: bool, checkpoint: str) -> None:
    n, s, ss = acc
    if n < 2:
        raise ValueError(f"only {n} VGGish example(s) embedded: FAD needs at least 2 "
                         "(are all files too short or unreadable? see failed/)")
    mu = s / n
    sigma = (ss - n * np.outer(mu, mu)) / (n - 1)  # unbiased, like np.cov
    save_stats(path, mu, sigma, n, random_init=random_init, checkpoint=checkpoint)


def run(files: tp.Sequence[str], out_dir: tp.Union[str, Path], checkpoint: str,
        workers: int = 2, pca_params: tp.Optional[str] = None,
        beam_args: tp.Sequence[str] = ()) -> dict:
    """Embed `files` into `out_dir` (embeddings/, failed/, stats.npz, summary.json)."""
    from .vggish import is_random_checkpoint
    out = Path(out_dir)
    for sub in (EMBEDDINGS, FAILED):  # a rerun into the same folder starts clean
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    random_init = is_random_checkpoint(checkpoint)
    args = list(beam_args) or ['--runner=DirectRunner', f'--direct_num_workers={workers}',
                               '--direct_running_mode=' + ('multi_processing' if workers > 1 else 'in_memory')]
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        results = (p | 'Files' >> beam.Create(list(enumerate(files)))
                   | 'Spread' >> beam.Reshuffle()
                   | 'Embed' >> beam.ParDo(EmbedFile(checkpoint, str(out), pca_params))
                   .with_outputs(FAILED, main='ok'))
        _ = (results.ok | 'Stats' >> beam.CombineGlobally(GaussianStats())
             | 'Write' >> beam.Map(write_stats, str(out / STATS), random_init, checkpoint))
    failed = sorted(f.read_text() for f in (out / FAILED).glob('*.txt'))
    summary = {'files': len(files), 'embedded': len(files) - len(failed), 'failed': failed,
               'checkpoint': checkpoint, 'random_init': random_init, 'stats': str(out / STATS)}
    tmp = out / (SUMMARY + '.tmp')
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / SUMMARY)
    return summary
