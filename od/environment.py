"""od's runtime environment: where things live, offline-first weights, safe checkpoint loading.

`setup()` must run before AudioCraft reads its team configuration: it points AudioCraft at
od's own `config/teams/default.yaml` (pip-installed audiocraft ships no config dir), makes the
Hugging Face hub offline unless the user asked otherwise (a missing file then fails in seconds
instead of retrying for minutes), and makes sure AudioCraft finds an `ffmpeg` to write audio.
(Checkpoints load with torch's default `weights_only=True`: od's solver stores the XP config as
plain data, so no global needs allow-listing; see od/solvers/musicgen.py.)
"""
from __future__ import annotations

import logging
import os
import typing as tp
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent  # repository root (od is installed editable)
CONFIG_DIR = ROOT / 'config'
TEAM_CONFIG = CONFIG_DIR / 'teams' / 'default.yaml'

_done = False


class MissingWeightsError(FileNotFoundError):
    """Weights are not on this machine. The message says which file and where to put it."""


def setup() -> None:
    """Prepare the process for AudioCraft. Idempotent and cheap (imports no torch)."""
    global _done
    if _done:
        return
    os.environ.setdefault('OD_ROOT', str(ROOT))
    os.environ.setdefault('AUDIOCRAFT_CONFIG', str(TEAM_CONFIG))
    # Offline-first: with the hub unreachable, every missing file is otherwise retried for
    # minutes. Users with network access who want downloads set HF_HUB_OFFLINE=0 themselves.
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    _ensure_ffmpeg_on_path()
    # AudioCraft imports xformers at module level; the registry wheel's C++ kernels are built for
    # another torch, and od trains with the `torch` attention backend, so its load warning on
    # every import is noise. `python -m od.doctor` still reports it.
    logging.getLogger('xformers').setLevel(logging.ERROR)
    _done = True


def _ensure_ffmpeg_on_path() -> None:
    """AudioCraft writes audio by running `ffmpeg`; install.sh may have put it only in the venv."""
    import shutil
    import sys
    if shutil.which('ffmpeg') is None:
        venv_bin = str(Path(sys.executable).parent)
        os.environ['PATH'] = venv_bin + os.pathsep + os.environ.get('PATH', '')


def ffmpeg_exe() -> str:
    """The one answer to "which ffmpeg": the one on PATH (system or .venv/bin, see setup), else
    the static build inside the imageio-ffmpeg wheel."""
    import shutil
    _ensure_ffmpeg_on_path()
    found = shutil.which('ffmpeg')
    if found:
        return found
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def reference_dir() -> Path:
    """The team's reference folder that `//reference/...` paths resolve into."""
    setup()
    from audiocraft.environment import AudioCraftEnvironment
    return Path(AudioCraftEnvironment.get_reference_dir())


def resolve_reference(path: tp.Union[str, Path]) -> Path:
    """`//reference/x/y` -> `<reference_dir>/x/y`; other paths are returned unchanged.

    Unlike AudioCraft's resolver this does not require the reference folder to exist: the
    caller checks the file and raises `MissingWeightsError` naming the exact path.
    """
    path = str(path)
    if path.startswith('//reference/'):
        return reference_dir() / path[len('//reference/'):]
    return Path(path)


def hf_cached(repo_id: str, required: tp.Sequence[str] = ('config.json',),
              any_of: tp.Sequence[str] = ()) -> tp.Optional[Path]:
    """Snapshot folder of `repo_id` in the Hugging Face cache holding the files, else None."""
    try:
        from huggingface_hub import snapshot_download
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError) or not a valid repo id
        return None
    return folder if _has_files(folder, required, any_of) else None


def hf_snapshot(repo_id: str, required: tp.Sequence[str] = ('config.json',),
                any_of: tp.Sequence[str] = ()) -> Path:
    """Local folder holding `repo_id`: `<reference_dir>/<repo_id>` first, then the HF cache.

    Args:
        repo_id: hub id such as `facebook/encodec_32khz`.
        required: files that must all be present.
        any_of: at least one of these must be present (e.g. the weight formats).
    Raises:
        MissingWeightsError naming the missing files and both places they may go.
    """
    setup()
    ref = reference_dir() / repo_id
    if _has_files(ref, required, any_of):
        return ref
    cached = hf_cached(repo_id, required, any_of)
    if cached is not None:
        return cached
    raise missing_weights(repo_id, list(required) + ([' or '.join(any_of)] if any_of else []))


def missing_weights(repo_id: str, files: tp.Sequence[str],
                    reference_files: tp.Optional[tp.Sequence[str]] = None) -> MissingWeightsError:
    """The error for weights that are on neither the HF cache nor the reference folder.

    `reference_files` names what the reference folder must hold when it differs from the hub
    files (e.g. an AudioCraft export).
    """
    ref = reference_dir() / repo_id
    ref_note = f" holding {', '.join(reference_files)}" if reference_files else ''
    return MissingWeightsError(
        f"Weights for '{repo_id}' are not on this machine (od never downloads at run time).\n"
        f"  Needed files: {', '.join(files)}\n"
        f"  Put them in the Hugging Face cache (on a machine with network: "
        f"`huggingface-cli download {repo_id}`, then copy ~/.cache/huggingface/hub/"
        f"models--{repo_id.replace('/', '--')}), or into the team's reference folder{ref_note}:\n"
        f"    {ref}/\n"
        f"  (reference_dir is set in {TEAM_CONFIG.relative_to(ROOT)} or by AUDIOCRAFT_REFERENCE_DIR).")


def _has_files(folder: Path, required: tp.Sequence[str], any_of: tp.Sequence[str]) -> bool:
    if not folder.is_dir() or not all((folder / f).exists() for f in required):
        return False
    return not any_of or any((folder / f).exists() for f in any_of)


def require_file(path: tp.Union[str, Path], what: str, hint: str = '') -> Path:
    """Resolve `//reference/...` and check the file exists, or raise `MissingWeightsError`."""
    resolved = resolve_reference(path)
    if not resolved.exists():
        msg = f"{what} not found: {resolved}"
        if str(path) != str(resolved):
            msg += f" (from {path})"
        if hint:
            msg += f"\n  {hint}"
        raise MissingWeightsError(msg)
    return resolved
