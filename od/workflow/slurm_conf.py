"""The configuration files of od's one-node SLURM cluster (od/workflow/slurm_local.py), as text.

Every daemon listens on 127.0.0.1 only, on ports of its own (a system SLURM on 6817-6819 or a
MariaDB on 3306 is left alone), and keeps its state, spool and logs in the cluster's folder.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

PARTITION = 'local'
CLUSTER = 'od-local'
# Not SLURM's 6817/6818/6819 nor MariaDB's 3306: a system cluster or database keeps its own.
CTLD_PORT, SLURMD_PORT, DBD_PORT, DB_PORT = 16817, 16818, 16819, 16820
PORTS = (CTLD_PORT, SLURMD_PORT, DBD_PORT, DB_PORT)
DB_USER = 'slurm'
DB_NAME = 'slurm_acct_db'


def slurm_conf(folder: Path, node: tp.Mapping[str, str]) -> str:
    """slurm.conf for one node on 127.0.0.1 (the `slurmd -C` fields of this machine in `node`),
    with accounting in slurmdbd so `sacct` answers (Dora reads job states through it)."""
    name = node['NodeName']
    hardware = ' '.join(f'{k}={v}' for k, v in node.items() if k not in ('NodeName', 'UpTime'))
    return f"""# Written by `python -m od.slurm start` for this machine; rewritten at each start.
ClusterName={CLUSTER}
SlurmctldHost={name}(127.0.0.1)
SlurmctldPort={CTLD_PORT}
SlurmdPort={SLURMD_PORT}
# Bind to the configured addresses (127.0.0.1), not to every interface.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool/%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
# No cgroups needed: processes tracked by parent pid, tasks not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={DBD_PORT}
# With munge, the "password" names munged's socket (slurmctld and sacct talk to slurmdbd).
AccountingStoragePass={folder}/munge/munge.socket
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
JobRequeue=1
MessageTimeout=30
SlurmdTimeout=300
InactiveLimit=0
KillWait=10
MinJobAge=300
NodeName={name} NodeAddr=127.0.0.1 NodeHostname={name} {hardware} State=UNKNOWN
PartitionName={PARTITION} Nodes={name} Default=YES MaxTime=INFINITE State=UP
"""


def slurmdbd_conf(folder: Path, password: str) -> str:
    """slurmdbd.conf (read from beside slurm.conf; must be mode 600): MariaDB on 127.0.0.1."""
    return f"""# Written by `python -m od.slurm start`.
AuthType=auth/munge
AuthInfo=socket={folder}/munge/munge.socket
DbdAddr=127.0.0.1
CommunicationParameters=NoInAddrAny
DbdHost=localhost
DbdPort={DBD_PORT}
SlurmUser=root
LogFile={folder}/log/slurmdbd.log
PidFile={folder}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={DB_PORT}
StorageUser={DB_USER}
StoragePass={password}
StorageLoc={DB_NAME}
"""


def db_grant(password: str) -> str:
    """SQL run once through MariaDB's socket: slurmdbd's own user, from 127.0.0.1 only."""
    return (f"CREATE OR REPLACE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';")
