"""A single-node SLURM cluster on this machine, bound to 127.0.0.1, for trying Dora grids.

    python -m od.slurm packages     # the apt-get line for what is missing, if anything:
    sudo apt-get install -y --no-install-recommends munge slurmctld slurmd slurm-client slurmdbd mariadb-server
    python -m od.slurm start        # munged, MariaDB, slurmdbd, slurmctld, slurmd; waits for idle
    export SLURM_CONF=/tmp/od-slurm-local/slurm.conf   # printed by `start`: sbatch/squeue/dora use it
    AUDIOCRAFT_CLUSTER=slurm_local dora grid slurm_debug
    python -m od.slurm status
    python -m od.slurm stop         # stops exactly the daemons `start` started

Why: od's SLURM path (Dora's grids through submitit, requeue, cancel) must be tried on a real
scheduler, and a workstation or CI runner has none. Nothing is installed here: missing Debian
packages end `start` with the one `apt-get install` line. The config is written from this
machine (`slurmd -C`: host name, CPUs, memory) into a state folder with the cluster's spool,
state and logs; every daemon listens on 127.0.0.1 only (`CommunicationParameters=NoInAddrAny`
with loopback addresses) and on ports of its own, so a system SLURM is left alone. Runs as root
(SlurmUser=root), like CI.

With accounting (slurmdbd on a MariaDB of its own, both on loopback): Dora's monitor and
`--retry` read job states from `sacct` through submitit. Without it `sacct` fails, submitit
"bypasses" the error and every job stays UNKNOWN, which Dora counts as not finished: `dora grid`
would never see its XPs complete or fail.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import typing as tp
from pathlib import Path

from . import slurm_conf

PACKAGES = {'munged': 'munge', 'slurmctld': 'slurmctld', 'slurmd': 'slurmd', 'sinfo': 'slurm-client',
            'sbatch': 'slurm-client', 'sacct': 'slurm-client', 'slurmdbd': 'slurmdbd',
            'mariadbd': 'mariadb-server', 'mariadb-install-db': 'mariadb-server', 'mariadb': 'mariadb-server'}
DEFAULT_DIR = Path(os.environ.get('OD_SLURM_DIR', '/tmp/od-slurm-local'))
DAEMONS = ('munged', 'mariadbd', 'slurmdbd', 'slurmctld', 'slurmd')  # started in this order, stopped in reverse
SBIN = ('/usr/sbin', '/sbin', '/usr/bin')


class SlurmLocalError(RuntimeError):
    """The local cluster cannot start (missing packages, not root, a daemon failed); the message
    says what to do."""


def find(program: str) -> tp.Optional[str]:
    """`program` on PATH or in the sbin folders (root's PATH may lack /usr/sbin)."""
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN))


def missing_packages() -> tp.List[str]:
    """Debian packages whose programs are not on this machine."""
    return sorted({package for program, package in PACKAGES.items() if find(program) is None})


def install_line(packages: tp.Sequence[str]) -> str:
    return 'apt-get install -y --no-install-recommends ' + ' '.join(packages)


def check_ready() -> None:
    """Raise SlurmLocalError naming the apt-get line or the root requirement."""
    missing = missing_packages()
    if missing:
        raise SlurmLocalError(f"SLURM is not installed here (missing Debian packages: {', '.join(missing)}). "
                              f"Install them with:\n  sudo {install_line(missing)}")
    if os.geteuid() != 0:
        raise SlurmLocalError("the local cluster runs its daemons as root (SlurmUser=root): run it with sudo, "
                              "or use your site's cluster (README: Several processes, several GPUs, SLURM).")


def machine() -> tp.Dict[str, str]:
    """This node's line from `slurmd -C` (NodeName, CPUs, Boards, ..., RealMemory) as a dict."""
    out = subprocess.run([find('slurmd') or 'slurmd', '-C'], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0]
    fields = dict(item.split('=', 1) for item in first.split() if '=' in item)
    fields.setdefault('NodeName', socket.gethostname().split('.')[0])
    return fields


def env(folder: Path = DEFAULT_DIR) -> tp.Dict[str, str]:
    """Environment variables that point SLURM's commands (sbatch, squeue, Dora) at the cluster."""
    return {'SLURM_CONF': str(folder / 'slurm.conf')}


def _start_time(pid: int) -> tp.Optional[str]:
    """The kernel's start time of `pid` (field 22 of /proc/<pid>/stat), None when it is gone: a
    recorded pid counts as ours only while it names the same process (pids are reused)."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return None
    fields = stat.rsplit(')', 1)[1].split()
    return None if fields[0] == 'Z' else fields[19]


def _started(folder: Path) -> tp.Dict[str, int]:
    """The daemons `start` recorded in `folder` that are still running."""
    pids = {}
    for daemon in DAEMONS:
        record = folder / f'{daemon}.od-pid'
        if record.exists():
            pid, started = record.read_text().split()
            if _start_time(int(pid)) == started:
                pids[daemon] = int(pid)
    return pids


def sinfo_states(folder: Path = DEFAULT_DIR) -> tp.List[str]:
    """The node states `sinfo` reports (['idle'] when ready), [] when the controller is down."""
    proc = subprocess.run([find('sinfo') or 'sinfo', '-h', '-N', '-o', '%t'], capture_output=True, text=True,
                          env={**os.environ, **env(folder)}, timeout=30)
    return proc.stdout.split() if proc.returncode == 0 else []


def _spawn(daemon: str, argv: tp.List[str], folder: Path) -> int:
    log = open(folder / 'log' / f'{daemon}.out', 'ab')
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, **env(folder)})
    (folder / f'{daemon}.od-pid').write_text(f'{proc.pid} {_start_time(proc.pid)}\n')
    return proc.pid


def _wait(predicate: tp.Callable[[], bool], timeout: float, what: str, folder: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    logs = '\n'.join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted((folder / 'log').glob('*')))
    stop(folder)
    raise SlurmLocalError(f"the local cluster did not come up: {what} (after {timeout:.0f} s). Logs:\n{logs}")


def start(folder: Path = DEFAULT_DIR, timeout: float = 60.0) -> tp.Dict[str, str]:
    """Start munged, slurmctld and slurmd for this machine; return the environment to use it.

    Idempotent: a cluster already running from `folder` is kept. Raises SlurmLocalError with the
    apt-get line when packages are missing."""
    check_ready()
    folder = Path(folder).resolve()
    running = _started(folder)
    if set(running) == set(DAEMONS) and sinfo_states(folder):
        return env(folder)
    if running:
        stop(folder)
    taken = [port for port in slurm_conf.PORTS if _listening(port)]
    if taken:  # another cluster (or service) would answer our sinfo and pass for this one
        raise SlurmLocalError(f"127.0.0.1 port(s) {', '.join(map(str, taken))} are in use: another local cluster "
                              "is running (`python -m od.slurm status --dir <its folder>`, then stop it) or "
                              "another service holds them.")
    node = machine()
    for sub in ('munge', 'state', f"spool/{node['NodeName']}", 'log'):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    # munged refuses a key readable by others and socket folders others may write.
    for sub in ('', 'munge'):
        os.chmod(folder / sub, 0o755)
    key = folder / 'munge' / 'munge.key'
    if not key.exists():
        key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    (folder / 'slurm.conf').write_text(slurm_conf.slurm_conf(folder, node))
    munge = folder / 'munge'
    _spawn('munged', [find('munged'), '--foreground', '--force', f'--socket={munge}/munge.socket',
                      f'--key-file={key}', f'--pid-file={munge}/munged.pid', f'--log-file={folder}/log/munged.log',
                      f'--seed-file={munge}/munged.seed'], folder)
    _wait(lambda: (munge / 'munge.socket').exists(), 20, 'munged made no socket', folder)
    _start_accounting(folder, timeout)
    conf = str(folder / 'slurm.conf')
    _spawn('slurmctld', [find('slurmctld'), '-D', '-i', '-f', conf], folder)
    _spawn('slurmd', [find('slurmd'), '-D', '-f', conf, '-N', node['NodeName']], folder)
    _wait(lambda: sinfo_states(folder) == ['idle'], timeout, f"sinfo never showed {node['NodeName']} idle "
          f"(last: {sinfo_states(folder)})", folder)
    return env(folder)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(('127.0.0.1', port)) == 0


def _start_accounting(folder: Path, timeout: float) -> None:
    """MariaDB (its own data folder, 127.0.0.1 only) and slurmdbd on it. The database is made
    once per state folder, with a password of its own kept in the mode-600 slurmdbd.conf."""
    db = folder / 'db'
    fresh = not (db / 'data' / 'mysql').is_dir()
    if fresh:
        db.mkdir(exist_ok=True)
        proc = subprocess.run([find('mariadb-install-db'), '--no-defaults', f'--datadir={db}/data', '--user=root',
                               '--auth-root-authentication-method=socket', '--skip-test-db'],
                              capture_output=True, text=True)
        if proc.returncode:
            raise SlurmLocalError(f"mariadb-install-db failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    sock = db / 'mysqld.sock'
    sock.unlink(missing_ok=True)
    _spawn('mariadbd', [find('mariadbd'), '--no-defaults', f'--datadir={db}/data', f'--socket={sock}',
                        '--bind-address=127.0.0.1', f'--port={slurm_conf.DB_PORT}', '--skip-name-resolve',
                        '--user=root', f'--pid-file={db}/mariadbd.pid', f'--log-error={folder}/log/mariadbd.log'],
           folder)
    _wait(lambda: sock.exists() and _listening(slurm_conf.DB_PORT), timeout, 'MariaDB did not listen', folder)
    dbd_conf = folder / 'slurmdbd.conf'
    if fresh or not dbd_conf.exists():
        password = secrets.token_hex(16)
        client = find('mariadb')
        proc = subprocess.run([client, '--no-defaults', f'--socket={sock}', '-uroot', '-e',
                               slurm_conf.db_grant(password)], capture_output=True, text=True)
        if proc.returncode:
            raise SlurmLocalError(f"could not create slurmdbd's database user: {proc.stderr[-2000:]}")
        dbd_conf.write_text(slurm_conf.slurmdbd_conf(folder, password))
    os.chmod(dbd_conf, 0o600)
    _spawn('slurmdbd', [find('slurmdbd'), '-D'], folder)
    _wait(lambda: _listening(slurm_conf.DBD_PORT), timeout, 'slurmdbd did not listen', folder)


def stop(folder: Path = DEFAULT_DIR, timeout: float = 30.0) -> tp.List[str]:
    """Stop the daemons `start` recorded in `folder` (no other process), last started first; the
    state folder stays for reading its logs. Returns the names of those stopped."""
    folder = Path(folder).resolve()
    running = _started(folder)
    stopped = []
    for daemon in reversed(DAEMONS):
        pid = running.get(daemon)
        if pid is None:
            continue
        started = _start_time(pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _start_time(pid) == started and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _start_time(pid) == started:
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
        (folder / f'{daemon}.od-pid').unlink(missing_ok=True)
        stopped.append(daemon)
    return stopped


def _reap(pid: int) -> None:
    """Collect a daemon that is this process's child (else it lingers as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(folder: Path = DEFAULT_DIR) -> str:
    folder = Path(folder).resolve()
    running = _started(folder)
    lines = [f"{d}: {'running, pid ' + str(running[d]) if d in running else 'stopped'}" for d in DAEMONS]
    if running:
        lines.append(f"node states (sinfo): {' '.join(sinfo_states(folder)) or 'controller not answering'}")
        lines.append(f"export SLURM_CONF={folder / 'slurm.conf'}")
    return '\n'.join(lines)
