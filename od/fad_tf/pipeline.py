"""Apache Beam pipeline: audio files -> VGGish embeddings per file + each set's Gaussian stats.

    (set, i, path) --Reshuffle--> EmbedFile (load, mono 16 kHz, log-mel, VGGish)
        --> <set>/embeddings/<i>.npy     or <set>/failed/<i>.txt (bad file: named, skipped, counted)
        --> CombinePerKey(sum, sum of outer products) --> <set>/stats.npz (mu, sigma, n)

Several sets (e.g. reference and generated) go through one job, so the workers start and load
the checkpoint once.
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
    """(set, index, path) -> (set, [N, 128] embeddings); a bad file is written to failed/."""

    def __init__(self, checkpoint: str, out_dir: str, pca_params: tp.Optional[str] = None,
                 threads: int = 0):
        self.checkpoint, self.out_dir, self.pca_params, self.threads = checkpoint, out_dir, pca_params, threads

    def setup(self):
        from .vggish import Embedder  # one TF session per worker, reused for every file
        self.embedder = Embedder(self.checkpoint, self.pca_params, threads=self.threads)

    def process(self, item):
        from .frontend import MIN_SECONDS, load_audio, waveform_to_examples
        name, index, path = item
        out = Path(self.out_dir) / name
        try:
            wav, sr = load_audio(path)
            examples = waveform_to_examples(wav, sr)  # [N, 96, 64]
            if len(examples) == 0:
                raise ValueError(f"too short: {wav.shape[0] / sr:.3f} s < {MIN_SECONDS:.3f} s "
                                 "(one 0.96 s VGGish example)")
            emb = self.embedder.embed(examples)  # [N, 128]
        except Exception as exc:  # a bad file is reported and skipped, never fatal
            message = f"{path}: {type(exc).__name__}: {exc}"
            (out / FAILED / f'{index:07d}.txt').write_text(message)
            return
        _atomic_save(out / EMBEDDINGS / f'{index:07d}.npy', emb.astype(np.float32))
        yield name, emb

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


def write_stats(keyed_acc, out_dir: str, random_init: bool, checkpoint: str) -> None:
    name, (n, s, ss) = keyed_acc
    if n < 2:
        raise ValueError(f"set '{name}': only {n} VGGish example(s) embedded, FAD needs at least 2 "
                         "(are all files too short or unreadable? see failed/)")
    mu = s / n
    sigma = (ss - n * np.outer(mu, mu)) / (n - 1)  # unbiased, like np.cov
    save_stats(Path(out_dir) / name / STATS, mu, sigma, n, random_init=random_init, checkpoint=checkpoint)


def run_sets(sets: tp.Mapping[str, tp.Sequence[str]], out_dir: tp.Union[str, Path], checkpoint: str,
             workers: int = 2, pca_params: tp.Optional[str] = None,
             beam_args: tp.Sequence[str] = ()) -> tp.Dict[str, dict]:
    """Embed each named set of files into `out_dir/<name>/` (embeddings/, failed/, stats.npz,
    summary.json) in one Beam job; returns {name: summary}."""
    from .vggish import is_random_checkpoint
    out = Path(out_dir)
    for name in sets:
        for sub in (EMBEDDINGS, FAILED):  # a rerun into the same folder starts clean
            shutil.rmtree(out / name / sub, ignore_errors=True)
            (out / name / sub).mkdir(parents=True)
    random_init = is_random_checkpoint(checkpoint)
    args = list(beam_args) or ['--runner=DirectRunner', f'--direct_num_workers={workers}',
                               '--direct_running_mode=' + ('multi_processing' if workers > 1 else 'in_memory')]
    # local workers share this machine's cores; on a remote runner let TF use the worker's own
    threads = max(1, (os.cpu_count() or 1) // workers) if not beam_args and workers > 1 else 0
    items = [(name, i, path) for name, files in sets.items() for i, path in enumerate(files)]
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        _ = (p | 'Files' >> beam.Create(items)
             | 'Spread' >> beam.Reshuffle()
             | 'Embed' >> beam.ParDo(EmbedFile(checkpoint, str(out), pca_params, threads))
             | 'Stats' >> beam.CombinePerKey(GaussianStats())
             | 'Write' >> beam.Map(write_stats, str(out), random_init, checkpoint))
    summaries = {}
    for name, files in sets.items():
        folder = out / name
        failed = sorted(f.read_text() for f in (folder / FAILED).glob('*.txt'))
        if not (folder / STATS).exists():
            raise ValueError(f"set '{name}': no file could be embedded:\n" + '\n'.join(failed))
        summary = {'files': len(files), 'embedded': len(files) - len(failed), 'failed': failed,
                   'checkpoint': checkpoint, 'random_init': random_init, 'stats': str(folder / STATS)}
        tmp = folder / (SUMMARY + '.tmp')
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, folder / SUMMARY)
        summaries[name] = summary
    return summaries


def run(files: tp.Sequence[str], out_dir: tp.Union[str, Path], checkpoint: str, workers: int = 2,
        pca_params: tp.Optional[str] = None, beam_args: tp.Sequence[str] = ()) -> dict:
    """One set of files, written straight into `out_dir`; returns its summary."""
    return run_sets({'.': files}, out_dir, checkpoint, workers, pca_params, beam_args)['.']
