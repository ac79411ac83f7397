"""The Dask workers of the VGGish Beam job as SLURM jobs, through dask-jobqueue's SLURMCluster.

    .venv-fad/bin/python -m od.fad_tf embed --files list.txt --out /shared/emb --checkpoint ... \
        --runner slurm --workers 4 --slurm-partition cpu --slurm-memory 8GB

`--runner slurm` is Beam's Dask runner (od.metrics.fad_tf.runners) on a dask.distributed cluster whose
scheduler runs in this process and whose workers are SLURM jobs (one Dask worker per job),
submitted with `sbatch` and cancelled when the Beam job ends. dask-jobqueue writes and submits
the job scripts; od only says what they need: this environment's python, od on PYTHONPATH (the
workers unpickle od's DoFns), the partition, cores, memory and time limit. The workers must see
the audio files and the output folder (a shared filesystem); their logs go to <out>/slurm-logs/.
A worker is restarted by Dask when it passes its memory, so give each job room for TF and the
checkpoint (the CLI's default is 4GB). Runs in the FAD environment.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import typing as tp
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # od's repository root (on the workers' PYTHONPATH)


@dataclass(frozen=True)
class SlurmWorkers:
    """What each SLURM job of the Dask cluster asks for."""
    jobs: int = 2  # SLURM jobs, one Dask worker (one process) each
    partition: tp.Optional[str] = None  # None: the cluster's default partition
    cores: int = 1  # CPUs per job (TF threads of its worker)
    memory: str = '4GB'  # per job
    walltime: str = '01:00:00'
    host: str = '127.0.0.1'  # where the scheduler listens; workers on other nodes need a routable address
    startup_timeout: float = 300.0  # seconds to wait for every worker to join (queued jobs included)

    def __post_init__(self):
        if self.jobs < 1 or self.cores < 1:
            raise ValueError(f"slurm workers need jobs >= 1 and cores >= 1 (got {self.jobs}, {self.cores})")

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--slurm-partition', default=None, help='--runner slurm: partition of the worker jobs')
        parser.add_argument('--slurm-cores', type=int, default=1, help='--runner slurm: CPUs per worker job')
        parser.add_argument('--slurm-memory', default='4GB', help='--runner slurm: memory per worker job')
        parser.add_argument('--slurm-walltime', default='01:00:00', help='--runner slurm: time limit per job')
        parser.add_argument('--slurm-host', default='127.0.0.1',
                            help="--runner slurm: the scheduler's address (a routable one when workers run on "
                                 "other nodes)")

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, jobs: int) -> 'SlurmWorkers':
        return cls(jobs, args.slurm_partition, args.slurm_cores, args.slurm_memory, args.slurm_walltime,
                   args.slurm_host)


@contextlib.contextmanager
def dask_on_slurm(workers: SlurmWorkers, log_dir: tp.Union[str, Path]) -> tp.Iterator[str]:
    """A dask.distributed scheduler here and `workers.jobs` SLURM jobs as its workers, their logs
    in `log_dir` (slurm-<job id>.out; it must be on the shared filesystem); yields the
    scheduler's address (for RunnerSpec(runner='dask', dask_address=...)). The jobs are cancelled
    on exit, whatever happened inside."""
    from dask.distributed import Client
    from dask_jobqueue import SLURMCluster
    python_path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])])
    cluster = SLURMCluster(
        queue=workers.partition, cores=workers.cores, processes=1, memory=workers.memory,
        walltime=workers.walltime, python=sys.executable,
        scheduler_options={'host': workers.host, 'dashboard': False},
        # on loopback the workers listen there too (od.workflow.slurm_local: nothing reachable from outside)
        worker_extra_args=['--host', workers.host] if workers.host.startswith('127.') else [],
        job_script_prologue=[f'export PYTHONPATH={python_path}', 'export TF_CPP_MIN_LOG_LEVEL=2'],
        log_directory=str(log_dir))
    try:
        cluster.scale(jobs=workers.jobs)
        with Client(cluster) as client:
            client.wait_for_workers(workers.jobs, timeout=workers.startup_timeout)
            yield cluster.scheduler_address
    finally:
        cluster.close()
