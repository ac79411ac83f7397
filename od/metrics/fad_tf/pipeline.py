"""Apache Beam pipeline: audio files -> VGGish embeddings per file + each set's Gaussian stats.

    chunks of (set, i, path) --Reshuffle--> EmbedFiles
        setup: TF + the checkpoint, once per worker process (Beam's Shared: also when a runner
               calls setup per bundle, as the Dask runner does per partition)
        per chunk: load, mono 16 kHz, log-mel (one file ahead, in a thread); the examples of
               consecutive files packed into full batches, one VGGish call per batch
        --> <set>/embeddings/<i>.npy     or <set>/failed/<i>.txt (bad file: named, skipped, counted)
        --> CombinePerKey(sum, sum of outer products) --> <set>/stats.npz (mu, sigma, n)

Several sets (e.g. reference and generated) go through one job, so the workers start and load
the checkpoint once. Memory stays flat in the number of files: a worker holds one batch, one
file ahead and one [D, D] accumulator. Where it runs (DirectRunner in or out of process, Beam's
Dask runner, any runner) is `od.metrics.fad_tf.runners`' plan; the transforms are the same on all.
Imports no torch.
"""
from __future__ import annotations

import logging
import os
import shutil
import typing as tp
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.shared import Shared

from ...core.atomic import np_save, write_json, write_text
from .batching import ExampleBatcher, prefetch
from .runners import RunnerSpec, plan
from .stats import save_stats  # the format od.metrics.fad reads

EMBEDDINGS = 'embeddings'
FAILED = 'failed'
STATS = 'stats.npz'
SUMMARY = 'summary.json'

logger = logging.getLogger(__name__)
# One handle per process: every copy of EmbedFiles in a worker (Beam makes one per bundle on some
# runners, e.g. Dask's per partition) and every later job on a long-lived worker share the model.
MODEL = Shared()
model_loads = 0  # checkpoints restored by this process (tests ask each Dask worker for it)


def examples_of(path: str) -> np.ndarray:
    """Audio file -> VGGish examples [N, 96, 64]; a file too short for one example raises."""
    from .frontend import MIN_SECONDS, load_audio, waveform_to_examples
    wav, sr = load_audio(path)
    bad = int(np.size(wav) - np.isfinite(wav).sum())
    if bad:  # one NaN would make the whole set's statistics (and the FAD) NaN
        raise ValueError(f"{bad} NaN/Inf samples")
    examples = waveform_to_examples(wav, sr)
    if len(examples) == 0:
        raise ValueError(f"too short: {wav.shape[0] / sr:.3f} s < {MIN_SECONDS:.3f} s "
                         "(one 0.96 s VGGish example)")
    return examples


class EmbedFiles(beam.DoFn):
    """[(set, index, path), ...] -> (set, [N, 128] embeddings) per file; bad files go to failed/."""

    def __init__(self, checkpoint: str, out_dir: str, pca_params: tp.Optional[str] = None,
                 threads: int = 0, batch_size: int = 64):
        self.checkpoint, self.out_dir, self.pca_params = checkpoint, out_dir, pca_params
        self.threads, self.batch_size = threads, batch_size

    def _load(self):
        global model_loads
        from .vggish import Embedder
        model_loads += 1
        return Embedder(self.checkpoint, self.pca_params, batch_size=self.batch_size, threads=self.threads)

    def setup(self):
        files = [self.checkpoint, self.checkpoint + '.index', self.pca_params or '']
        changed = tuple(os.stat(f).st_mtime_ns if os.path.exists(f) else None for f in files)
        # same tag: the loaded model is reused; another checkpoint (or an edited one) reloads
        self.embedder = MODEL.acquire(self._load, tag=(*files, changed, self.threads, self.batch_size))

    def process(self, chunk):
        batcher = ExampleBatcher(self.embedder.embed, self.batch_size)
        for (name, index, path), examples in prefetch(lambda item: examples_of(os.fsdecode(item[2])), chunk):
            if isinstance(examples, Exception):  # a bad file is reported and skipped, never fatal
                message = f"{os.fsdecode(path)}: {type(examples).__name__}: {examples}"
                message = os.fsencode(message).decode('utf-8', 'backslashreplace')  # names need not be UTF-8
                write_text(Path(self.out_dir) / name / FAILED / f'{index:07d}.txt', message)
                continue
            for key, emb in batcher.add((name, index), examples):
                yield self._done(key, emb)
        for key, emb in batcher.flush():
            yield self._done(key, emb)

    def _done(self, key, emb: np.ndarray):
        name, index = key
        np_save(Path(self.out_dir) / name / EMBEDDINGS / f'{index:07d}.npy', emb.astype(np.float32))
        return name, emb


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


def chunked(items: tp.Sequence, n_chunks: int) -> tp.List[list]:
    """Split `items` into n_chunks contiguous lists of near-equal length (none empty)."""
    n_chunks = max(1, min(n_chunks, len(items)))
    bounds = np.linspace(0, len(items), n_chunks + 1).round().astype(int)
    return [list(items[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def audio_seconds(paths: tp.Iterable[str]) -> tp.Optional[float]:
    """Total duration from the files' headers (no decoding); None when one cannot be read."""
    import soundfile as sf
    try:
        return float(sum(sf.info(p).duration for p in paths))
    except Exception:  # noqa: BLE001  (a bad file is reported by the pipeline, not here)
        return None


def run_sets(sets: tp.Mapping[str, tp.Sequence[str]], out_dir: tp.Union[str, Path], checkpoint: str,
             runner: tp.Union[RunnerSpec, int, None] = None, pca_params: tp.Optional[str] = None,
             beam_args: tp.Sequence[str] = ()) -> tp.Dict[str, dict]:
    """Embed each named set of files into `out_dir/<name>/` (embeddings/, failed/, stats.npz,
    summary.json) in one Beam job; returns {name: summary}. `runner` is a RunnerSpec (an int
    is a number of DirectRunner workers); `beam_args` are added to its Beam options."""
    from .vggish import is_random_checkpoint
    spec = runner if isinstance(runner, RunnerSpec) else RunnerSpec(workers=runner or 2)
    if beam_args:
        spec = spec.replace(beam_args=(*spec.beam_args, *beam_args))
    out = Path(out_dir)
    for name in sets:
        for sub in (EMBEDDINGS, FAILED):  # a rerun into the same folder starts clean
            shutil.rmtree(out / name / sub, ignore_errors=True)
            (out / name / sub).mkdir(parents=True)
    random_init = is_random_checkpoint(checkpoint)
    # Paths travel as bytes: Beam's string coder refuses file names that are not UTF-8.
    items = [(name, i, os.fsencode(path)) for name, files in sets.items() for i, path in enumerate(files)]
    how = plan(spec, len(items), audio_seconds(os.fsdecode(p) for _, _, p in items) if spec.runner == 'direct' else None)
    logger.info("VGGish job: %d file(s), %s", len(items), how.reason)
    p = beam.Pipeline(options=PipelineOptions(how.beam_args))
    _ = (p | 'Files' >> beam.Create(chunked(items, how.chunks))
         | 'Spread' >> beam.Reshuffle()
         | 'Embed' >> beam.ParDo(EmbedFiles(checkpoint, str(out), pca_params, how.tf_threads, spec.batch_size))
         | 'Stats' >> beam.CombinePerKey(GaussianStats())
         | 'Write' >> beam.Map(write_stats, str(out), random_init, checkpoint))
    result = p.run()
    try:
        result.wait_until_finish()
    finally:
        client = getattr(result, 'client', None)  # the Dask runner's connection to the scheduler
        if client is not None:
            client.close()
    summaries = {}
    for name, files in sets.items():
        folder = out / name
        failed = sorted(f.read_text() for f in (folder / FAILED).glob('[0-9]*.txt'))
        if not (folder / STATS).exists():
            raise ValueError(f"set '{name}': no file could be embedded:\n" + '\n'.join(failed))
        summary = {'files': len(files), 'embedded': len(files) - len(failed), 'failed': failed,
                   'checkpoint': checkpoint, 'random_init': random_init, 'stats': str(folder / STATS),
                   'runner': how.mode, 'workers': how.workers, 'plan': how.reason}
        write_json(folder / SUMMARY, summary)
        summaries[name] = summary
    return summaries


def run(files: tp.Sequence[str], out_dir: tp.Union[str, Path], checkpoint: str,
        runner: tp.Union[RunnerSpec, int, None] = None, pca_params: tp.Optional[str] = None,
        beam_args: tp.Sequence[str] = ()) -> dict:
    """One set of files, written straight into `out_dir`; returns its summary."""
    return run_sets({'.': files}, out_dir, checkpoint, runner, pca_params, beam_args)['.']
