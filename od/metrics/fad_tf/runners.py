"""Where the VGGish Beam job runs, chosen from configuration (`RunnerSpec`) and this machine.

    direct  Beam's DirectRunner on this machine. `workers` is what was asked for; the plan runs
            the job in this process (TF on all cores, the next file's frontend in a thread)
            whenever separate worker processes would not beat that (see `processes_pay`).
    dask    Beam's Dask runner on a dask.distributed cluster: `dask_address` (tcp://host:8786)
            names its scheduler; without one Beam starts a LocalCluster on this machine.
            Workers must see the audio files and the output folder (a shared filesystem).
    slurm   the dask runner on a scheduler started here whose workers are `workers` SLURM jobs
            (od/metrics/fad_tf/slurm.py: dask-jobqueue's SLURMCluster; `python -m od.fad_tf embed` only).
    other   any Beam runner by name or import path, its options in `beam_args`.

Imports neither Beam nor numpy: the main environment builds the same spec and passes it to
`python -m od.fad_tf embed` as the command-line options `RunnerSpec.cli_args` writes.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import typing as tp
from dataclasses import dataclass, field

# Beam 2.77 knows no short name for its Dask runner (`--runner=DaskRunner` is refused).
DASK_RUNNER = 'apache_beam.runners.dask.dask_runner.DaskRunner'
RUNNERS = {'direct': 'DirectRunner', 'dask': DASK_RUNNER}

# The planner's model of a worker process (its figures are measured by benchmarks/fad_beam.py,
# quoted in docs/evaluation.md): a DirectRunner worker pays a fixed start-up before its first file
# (importing TF, restoring the checkpoint, Beam's own start), and on 2 cores two one-thread
# workers embed slower than one process using both cores, even before their start-up. Machines
# with more cores were not measured: the core rule below is the assumption.
WORKER_START_S = 3.2
MIN_CORES_PER_WORKER = 2  # a worker process with one core runs its frontend and TF in turn
AUDIO_S_PER_CORE_S = 17.0  # seconds of audio one core embeds per second in process (batched)
MAX_START_SHARE = 0.1  # processes only when their start-up is under 10 % of the in-process time


def cores() -> int:
    """CPU cores this process may run on (affinity / container limits, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class RunnerSpec:
    """What the configuration asks for (od.eval flags, `metrics.fad.tf.*` in the solver)."""
    runner: str = 'direct'  # direct | dask | a Beam runner name or import path
    workers: int = 2  # parallel workers wanted (direct: processes when they pay; dask: 4 tasks each; slurm: jobs)
    dask_address: tp.Optional[str] = None  # scheduler of an existing cluster (dask runner)
    tf_threads: tp.Optional[int] = None  # TF intra-op threads per worker; None: chosen by the plan
    batch_size: int = 64  # VGGish examples per inference call
    beam_args: tp.Tuple[str, ...] = field(default_factory=tuple)  # more Beam pipeline options
    work_dir: tp.Optional[str] = None  # where the job's outputs go (None: the system's temp); the workers must see it

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.dask_address and self.runner != 'dask':
            raise ValueError(f"dask_address={self.dask_address!r} needs runner='dask' (got {self.runner!r})")
        object.__setattr__(self, 'beam_args', tuple(self.beam_args))

    def replace(self, **changes) -> 'RunnerSpec':
        return dataclasses.replace(self, **changes)

    def cli_args(self) -> tp.List[str]:
        """The options of `python -m od.fad_tf embed` that rebuild this spec (see add_arguments;
        work_dir is the caller's choice of --out)."""
        args = ['--runner', self.runner, '--workers', str(self.workers), '--batch-size', str(self.batch_size)]
        if self.dask_address:
            args += ['--dask-address', self.dask_address]
        if self.tf_threads is not None:
            args += ['--tf-threads', str(self.tf_threads)]
        return args + [f'--beam-arg={a}' for a in self.beam_args]

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--runner', default='direct',
                            help="direct (this machine), dask (a dask.distributed cluster), slurm (Dask workers as "
                                 "SLURM jobs) or a Beam runner")
        parser.add_argument('--workers', type=int, default=2,
                            help='parallel workers (direct: run in process when processes would not pay)')
        parser.add_argument('--dask-address', default=None,
                            help='scheduler of a running Dask cluster, e.g. tcp://10.0.0.5:8786 (--runner dask)')
        parser.add_argument('--tf-threads', type=int, default=None, help='TF threads per worker (default: chosen)')
        parser.add_argument('--batch-size', type=int, default=64, help='VGGish examples per inference call')
        parser.add_argument('--beam-arg', action='append', default=[], metavar='OPTION',
                            help='one more Beam pipeline option, e.g. --beam-arg=--dask_connection_timeout=30')

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> 'RunnerSpec':
        return cls(args.runner, args.workers, args.dask_address, args.tf_threads, args.batch_size,
                   tuple(args.beam_arg))


@dataclass
class Plan:
    """How a job of `n_files` runs: Beam options, model threads, work split, and why."""
    beam_args: tp.List[str]
    mode: str  # in_process | processes | dask | <runner>
    workers: int
    tf_threads: int  # 0: TF picks (all cores of the worker)
    chunks: int  # elements the file list is split into (each keeps its files' batches full)
    reason: str


def processes_pay(workers: int, n_cores: int, audio_seconds: tp.Optional[float]) -> bool:
    """Would `workers` DirectRunner processes beat one process that uses all `n_cores`?

    Only when each process keeps MIN_CORES_PER_WORKER cores (on 2 cores, 2 processes measured
    slower than one) and the job is long enough for their start-up (WORKER_START_S, each process
    importing TF and restoring the checkpoint) to be a small share of it. Unknown length: no.
    """
    if min(workers, n_cores // MIN_CORES_PER_WORKER) < 2 or audio_seconds is None:
        return False
    in_process_s = audio_seconds / (AUDIO_S_PER_CORE_S * n_cores)
    return WORKER_START_S < MAX_START_SHARE * in_process_s


def _has_option(args: tp.Sequence[str], name: str) -> bool:
    return any(a == name or a.startswith(name + '=') for a in args)


def plan(spec: RunnerSpec, n_files: int, audio_seconds: tp.Optional[float] = None,
         n_cores: tp.Optional[int] = None) -> Plan:
    """Turn the spec into Beam options for this machine and this many files."""
    n_cores = n_cores or cores()
    extra = list(spec.beam_args)
    if spec.runner == 'direct' and not _has_option(extra, '--runner'):
        if processes_pay(spec.workers, n_cores, audio_seconds):
            workers = min(spec.workers, n_cores // MIN_CORES_PER_WORKER)
            return Plan(['--runner=DirectRunner', f'--direct_num_workers={workers}',
                         '--direct_running_mode=multi_processing', *extra], 'processes', workers,
                        spec.tf_threads if spec.tf_threads is not None else n_cores // workers,
                        _chunks(n_files, workers), f"{workers} worker processes on {n_cores} cores")
        why = "in process" if spec.workers < 2 else (
            f"in process: {spec.workers} worker processes would not beat one process on {n_cores} "
            f"core(s) for this job (each pays ~{WORKER_START_S:.0f} s to import TF and restore the checkpoint)")
        return Plan(['--runner=DirectRunner', '--direct_running_mode=in_memory', *extra], 'in_process', 1,
                    spec.tf_threads or 0, _chunks(n_files, 1), why)
    if spec.runner == 'dask':
        beam = [f'--runner={DASK_RUNNER}']
        if spec.dask_address:
            beam.append(f'--dask_client_address={spec.dask_address}')
        chunks = _chunks(n_files, spec.workers)
        if not _has_option(extra, '--dask_npartitions') and not _has_option(extra, '--dask_partition_size'):
            beam.append(f'--dask_npartitions={chunks}')  # one Dask task per chunk of files
        where = spec.dask_address or 'a LocalCluster Beam starts on this machine'
        return Plan(beam + extra, 'dask', spec.workers, spec.tf_threads or 0, chunks, f"Dask runner on {where}")
    runner = RUNNERS.get(spec.runner, spec.runner)
    beam = extra if _has_option(extra, '--runner') else [f'--runner={runner}', *extra]
    return Plan(beam, runner, spec.workers, spec.tf_threads or 0, _chunks(n_files, spec.workers),
                f"Beam runner {runner}")


def _chunks(n_files: int, workers: int, files_per_chunk: int = 64) -> int:
    """How many elements the files go in: a few per worker (balance), at most 64 files each."""
    if n_files <= 0:
        return 1
    wanted = 1 if workers <= 1 else 4 * workers
    return max(1, min(n_files, max(wanted, math.ceil(n_files / files_per_chunk))))
