"""What a command's run must look like: a one-paragraph message or a count, never a traceback;
outputs that parse whole; no temporary left once a rerun has finished.

`run` starts a command the way a user does (its own session, so a kill -9 reaches its children
too) and `outputs_problems` opens every file under a folder with the reader of its type.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@dataclasses.dataclass
class Run:
    args: tp.List[str]
    rc: int
    out: str          # stdout then stderr, decoded with escapes (names need not be UTF-8)
    err: str
    wall: float

    @property
    def traceback(self) -> bool:
        return 'Traceback (most recent call last)' in self.out

    def mentions(self, token: str) -> bool:
        return token in self.out or token.encode('unicode_escape').decode() in self.out

    def tail(self, n: int = 600) -> str:
        return ' '.join(self.out[-n:].split())

    def message_ok(self) -> bool:
        """A clean ending: 0, or non-zero with a message and no traceback."""
        return not self.traceback and (self.rc == 0 or bool(self.err.strip()))


def env(**extra: str) -> tp.Dict[str, str]:
    """The environment od's commands run in: offline, one torch thread, this checkout first."""
    out = dict(os.environ)
    out.update(HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT), TOKENIZERS_PARALLELISM='false')
    out['PATH'] = str(Path(PYTHON).parent) + os.pathsep + out.get('PATH', '')
    out.update(extra)
    return out


def od(module: str, *args: str) -> tp.List[str]:
    return [PYTHON, '-m', module, *args]


def dora(*args: str) -> tp.List[str]:
    return [PYTHON, '-m', 'dora', 'run', *args]


def _decode(data: bytes) -> str:
    return data.decode('utf-8', errors='backslashreplace')


def run(cmd: tp.Sequence[str], environ: tp.Optional[dict] = None, cwd: Path = ROOT, timeout: float = 900) -> Run:
    start = time.time()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=environ or env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f'\n[faults] timed out after {timeout:.0f} s'.encode()
    return Run(list(map(str, cmd)), proc.returncode, _decode(out) + '\n' + _decode(err), _decode(err),
               time.time() - start)


def start(cmd: tp.Sequence[str], environ: tp.Optional[dict] = None, cwd: Path = ROOT,
          log: tp.Optional[Path] = None) -> subprocess.Popen:
    """A command in its own session (`kill_group` reaches its children), output to `log`."""
    sink = open(log, 'wb') if log else subprocess.DEVNULL
    return subprocess.Popen(list(cmd), cwd=cwd, env=environ or env(), stdout=sink, stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def group_alive(pgid: int) -> tp.List[int]:
    """Pids still in the process group `pgid` (children a kill must have reached)."""
    alive = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != 'Z':
            alive.append(int(entry.name))
    return alive


# ---------------------------------------------------------------------------------------------
# Outputs

TMP_NAME = re.compile(r'\.tmp(\b|$|\.)|\.old$|\.partial$')
SKIP_SUFFIXES = {'.log', '.txt', '.tsv', '.csv', '.lock', '.html', '.md', '.0', '.1', ''}


def leftovers(folder: Path) -> tp.List[Path]:
    """Temporaries (`*.tmp*`, `.old` folders) under `folder`."""
    if not folder.exists():
        return []
    return sorted(p for p in _walk(folder) if TMP_NAME.search(p.name))


def _walk(folder: Path) -> tp.Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):  # no symlink following: loops stay loops
        for name in dirnames + filenames:
            yield Path(dirpath) / name


def _no_nan(value: str):
    raise ValueError(f"not JSON: {value}")


def check_file(path: Path, strict: bool = True) -> tp.Optional[str]:
    """Why `path` does not parse whole with the reader of its type (None when it does).
    `strict`: audio must decode to its end (od's own outputs; not copies of a user's files)."""
    suffix = path.suffix.lower()
    try:
        if path.is_symlink() or path.is_dir() or suffix in SKIP_SUFFIXES or 'tfevents' in path.name:
            return None
        if path.stat().st_size == 0 and suffix not in SKIP_SUFFIXES:
            return 'empty file'
        if suffix == '.json':
            json.loads(path.read_text(encoding='utf-8'), parse_constant=_no_nan)
        elif suffix == '.jsonl':
            for line in path.read_text(encoding='utf-8').splitlines():
                json.loads(line, parse_constant=_no_nan)
        elif suffix in ('.th', '.pt', '.bin'):
            import torch
            torch.load(path, map_location='cpu', weights_only=True)
        elif suffix == '.safetensors':
            from safetensors.torch import load_file
            load_file(str(path))
        elif suffix in ('.npz', '.npy'):
            import numpy as np
            data = np.load(path, allow_pickle=False)
            if suffix == '.npz':
                with data:
                    [data[k] for k in data.files]
        elif suffix in ('.yaml', '.yml'):
            import yaml
            yaml.safe_load(path.read_text())
        elif suffix in ('.wav', '.flac', '.mp3', '.ogg', '.opus', '.m4a'):
            from od.data.media import scan_audio
            scan = scan_audio(path)
            if strict and scan.error:
                return f"audio stops early ({scan.error})"
            if suffix == '.wav' and strict:
                why = _wav_whole(path)
                if why:
                    return why
        elif suffix in ('.mp4', '.mkv', '.webm', '.mov', '.avi'):
            import av
            with av.open(str(path)) as container:
                for stream in list(container.streams.video[:1]) + list(container.streams.audio[:1]):
                    for _ in container.decode(stream):
                        pass
        elif suffix in ('.png', '.jpg', '.jpeg'):
            from PIL import Image
            with Image.open(path) as image:
                image.load()
    except Exception as exc:  # every reader raises its own types
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
    return None


def _wav_whole(path: Path) -> tp.Optional[str]:
    """A RIFF wav whose data chunk holds the bytes its header says (a torn write does not)."""
    import struct
    data = path.read_bytes()
    if data[:4] != b'RIFF' or data[8:12] != b'WAVE':
        return 'not a RIFF/WAVE file'
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack('<I', data[pos + 4:pos + 8])[0]
        if chunk == b'data':
            if size != 0xFFFFFFFF and pos + 8 + size > len(data):
                return f"data chunk says {size} bytes, file has {len(data) - pos - 8}"
            return None
        pos += 8 + size + (size & 1)
    return 'no data chunk'


def outputs_problems(folder: Path, strict: bool = True, allow_tmp: bool = False,
                     exclude: tp.Sequence[Path] = ()) -> tp.List[str]:
    """'<file>: why' for every file under `folder` that does not parse whole, and every temporary
    (unless `allow_tmp`: right after a kill they may be there, hidden and marked)."""
    problems = []
    if not folder.exists():
        return problems
    excluded = [Path(e) for e in exclude]
    for path in _walk(folder):
        if any(path == e or e in path.parents for e in excluded):
            continue
        inside_tmp = any(TMP_NAME.search(part) for part in path.relative_to(folder).parts[:-1])
        if TMP_NAME.search(path.name) or inside_tmp:  # (a file inside a temporary folder is part of it)
            if not allow_tmp and not inside_tmp:
                problems.append(f"{path}: temporary left behind")
            continue
        why = check_file(path, strict)
        if why:
            problems.append(f"{path}: {why}")
    return problems


def manifest_entries(path: Path) -> tp.List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
