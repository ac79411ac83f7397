"""od's runtime environment: where things live, offline-first weights, safe checkpoint loading.

`setup()` is the start-up of od's commands (the first statement of od/<command>.py and od/train.py; nothing runs it
on `import od`). It must run before AudioCraft is imported: it points AudioCraft at od's own
`config/teams/default.yaml` (pip-installed audiocraft ships no config dir; `use_team_config` does
only that, for library callers of od's AudioCraft-backed lookups), makes the Hugging Face hub
offline unless the user asked otherwise (a missing file then fails in seconds instead of
retrying for minutes; huggingface_hub reads the setting when it is imported), and makes sure
AudioCraft finds an `ffmpeg` to write audio.
It also makes every `torch.load` in the process a `weights_only` load
(`TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`), libraries included: no file od reads can run code (see
od/core/safe_load.py). od's solver stores the XP config as plain data, so its checkpoints need no
allow-listed global. And it points numba at od's cache folder (`NUMBA_CACHE_DIR`), where
librosa's kernels are compiled once, under a lock, before any od code can reach them
(od/core/numba_cache.py: two processes compiling them at once leave a cache that crashes).
"""
from __future__ import annotations

import logging
import os
import typing as tp
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # repository root (od is installed editable)
CONFIG_DIR = ROOT / 'config'
TEAM_CONFIG = CONFIG_DIR / 'teams' / 'default.yaml'

_done = False


class MissingWeightsError(FileNotFoundError):
    """Weights are not on this machine. The message says which file and where to put it."""


class AlreadyRunningError(RuntimeError):
    """Another process is writing the same output (an XP, a cache); the message names it."""


class ConfigError(ValueError):
    """A config names something that does not exist (a dataset config, a manifest). The message
    lists what does exist and the command that makes the missing piece."""


def use_team_config() -> None:
    """Point AudioCraft at od's team config (reference folder, Dora dir, clusters) unless the
    user chose one: what od's lookups through AudioCraft's environment need. Idempotent."""
    os.environ.setdefault('OD_ROOT', str(ROOT))
    os.environ.setdefault('AUDIOCRAFT_CONFIG', str(TEAM_CONFIG))


def setup() -> None:
    """Prepare the process for od's commands and AudioCraft. Idempotent and cheap (imports no torch)."""
    global _done
    if _done:
        return
    use_team_config()
    # Offline-first: with the hub unreachable, every missing file is otherwise retried for
    # minutes. Users with network access who want downloads set HF_HUB_OFFLINE=0 themselves.
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    # No pickle od or a library reads may run code (od/core/safe_load.py).
    if os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None) is not None:
        logger.warning("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is ignored: od loads weights only as plain tensors "
                       "(convert a trusted file once with `python -m od.trust <file>`).")
    os.environ['TORCH_FORCE_WEIGHTS_ONLY_LOAD'] = '1'
    _ensure_ffmpeg_on_path()
    # librosa's numba kernels: od's own cache folder, compiled once under a lock (od/core/numba_cache.py).
    from . import numba_cache
    numba_cache.ready()
    # AudioCraft imports xformers at module level; the registry wheel's C++ kernels are built for
    # another torch, and od trains with the `torch` attention backend, so its load warning on
    # every import is noise. `python -m od.doctor` still reports it.
    logging.getLogger('xformers').setLevel(logging.ERROR)
    for message, category, module in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category, module=module)
    _done = True


# Third-party warnings a user can do nothing about, each silenced by the module that raises it and
# its message (never a whole category: a new warning after an upgrade still shows). pytest.ini
# lists the same ones.
KNOWN_WARNINGS = (
    # open_clip imports timm's pre-0.9 module path
    ('Importing from timm.models.layers is deprecated', FutureWarning, r'timm\.models\.layers'),
    # Dora relies on Hydra changing the working directory into the XP folder
    ('Future Hydra versions will no longer change working directory', UserWarning, r'hydra\._internal\.hydra'),
    # a changelog note AudioCraft prints at every training start
    ('Up to version 1.0.1, the _prepare_tokens_and_attributes', UserWarning, r'audiocraft\.solvers\.musicgen'),
    # flashy's running average takes float() of the loss it is given
    ('Converting a tensor with requires_grad=True to a scalar', UserWarning, r'flashy\.utils'),
)


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
    use_team_config()
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


def hf_cached(repo_id: str, required: Files = ('config.json',),
              any_of: tp.Sequence[str] = ()) -> tp.Optional[Path]:
    """Snapshot folder of `repo_id` in the Hugging Face cache holding the files, else None."""
    try:
        from huggingface_hub import snapshot_download
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError) or not a valid repo id
        return None
    return folder if _has_files(folder, required, any_of) else None


def hf_snapshot(repo_id: str, required: Files = ('config.json',),
                any_of: tp.Sequence[str] = ()) -> Path:
    """Local folder holding `repo_id`: `<reference_dir>/<repo_id>` first, then the HF cache.

    Args:
        repo_id: hub id such as `facebook/encodec_32khz`.
        required: files that must all be present (an entry may be a tuple of alternatives:
            one of them, e.g. the tokenizer's formats).
        any_of: at least one of these must be present (e.g. the weight formats).
    Raises:
        MissingWeightsError naming the missing files and both places they may go.
    """
    ref = reference_dir() / repo_id
    if _has_files(ref, required, any_of):
        return ref
    cached = hf_cached(repo_id, required, any_of)
    if cached is not None:
        return cached
    raise missing_weights(repo_id, file_names(required) + ([' or '.join(any_of)] if any_of else []))


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


Files = tp.Sequence[tp.Union[str, tp.Sequence[str]]]   # each entry: a file, or a tuple of alternatives


def file_names(required: Files) -> tp.List[str]:
    """`required` as a message lists it ('config.json', 'model.safetensors or pytorch_model.bin')."""
    return [f if isinstance(f, str) else ' or '.join(f) for f in required]


def missing_files(folder: Path, required: Files) -> tp.List[str]:
    """The entries of `required` that `folder` lacks (an entry of alternatives: all of them)."""
    def present(entry) -> bool:
        return any((folder / f).exists() for f in ((entry,) if isinstance(entry, str) else entry))
    return [name for entry, name in zip(required, file_names(required)) if not folder.is_dir() or not present(entry)]


def _has_files(folder: Path, required: Files, any_of: tp.Sequence[str]) -> bool:
    return not missing_files(folder, list(required) + ([tuple(any_of)] if any_of else []))


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


# ---- user paths in configs -------------------------------------------------------------------
# Keys whose values are paths a user types (relative to where they typed the command). Hydra
# moves `dora run` into the XP folder, so each is made absolute against the caller's directory
# (Dora's `git_save.to_absolute_path`, which also knows about git_save clones) before use.
# `always`: the value is always a path; `if_exists`: it may also be a name (`t5-base`,
# `ViT-B-32`, a CLAP file name looked up in the reference dir), so it becomes a path only when
# such a file or folder exists relative to the caller.
USER_PATH_KEYS = {
    'always': ('continue_from', 'cache.path', 'datasource.train', 'datasource.valid', 'datasource.evaluate',
               'datasource.generate', 'conditioners.*.*.cache_dir', 'metrics.fad.stats_cache',
               'metrics.fad.tf.bin', 'textual_inversion.embeds_dir', 'textual_inversion.embeds_folder'),
    'if_exists': ('compression_model_checkpoint', 'conditioners.*.*.name', 'conditioners.*.*.pretrained',
                  'conditioners.*.*.checkpoint', 'metrics.fad.tf.model_path', 'metrics.clap.model',
                  'metrics.text_consistency.clap.model_path'),
}
_NOT_PATHS = ('//', 'hf-hub:', 'http://', 'https://')


def absolute_user_path(value: tp.Any, always: bool = True) -> tp.Any:
    """`value` made absolute against the directory the user typed it in (see USER_PATH_KEYS)."""
    from dora import git_save
    if not isinstance(value, str) or not value or value == '???':
        return value
    prefix = ''
    if value.startswith('//pretrained/') and not value.startswith('//pretrained//'):
        prefix, value, always = '//pretrained/', value[len('//pretrained/'):], False  # an export folder?
    if value.startswith(_NOT_PATHS) or os.path.isabs(value):
        return prefix + value
    expanded = os.path.expanduser(value)
    if expanded != value:
        return prefix + expanded
    absolute = str(git_save.to_absolute_path(value))
    if always or os.path.exists(absolute):
        return prefix + absolute
    return prefix + value


def absolute_user_paths(cfg: tp.Any) -> tp.Any:
    """Every USER_PATH_KEYS value of an omegaconf config made absolute, in place; returns cfg."""
    from omegaconf import DictConfig, OmegaConf

    def visit(node: tp.Any, parts: tp.Sequence[str], always: bool) -> None:
        if not isinstance(node, DictConfig) or not parts:
            return
        head, rest = parts[0], parts[1:]
        keys = list(node.keys()) if head == '*' else [head]
        for key in keys:
            if key not in node:
                continue
            if rest:
                visit(node[key], rest, always)
                continue
            raw = OmegaConf.to_container(node, resolve=False).get(key) if OmegaConf.is_config(node) else None
            if isinstance(raw, str) and '${' in raw:
                continue  # an interpolation: resolved from keys that are handled themselves
            value = node[key]
            new = absolute_user_path(value, always)
            if new != value:
                node[key] = new

    for kind, keys in USER_PATH_KEYS.items():
        for key in keys:
            visit(cfg, key.split('.'), kind == 'always')
    return cfg


def compose_config(overrides: tp.Sequence[str]):
    """od's config tree composed with `overrides` by Hydra, as `dora run` composes it (no Dora,
    nothing resolved): for library code that builds a model of a known configuration. Commands
    use `od.train.compose`, which also names a missing config group's options."""
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(str(CONFIG_DIR), version_base='1.1'):
        return compose('config', list(overrides))


def config_options(group: str) -> tp.List[str]:
    """Names a config group accepts (`dset` -> ['audio/colors', 'audio/example', ...])."""
    folder = CONFIG_DIR / group
    return sorted(str(p.relative_to(folder).with_suffix('')) for p in folder.rglob('*.yaml')) \
        if folder.is_dir() else []


def missing_config_message(missing: str, overrides: tp.Sequence[str]) -> str:
    """The message for `<group>/<name>` that has no YAML, with every option the group has."""
    group = missing.split('/', 1)[0]
    typed = next((o for o in overrides if o.split('=', 1)[0].lstrip('+~') == group), None)
    options = config_options(group)
    message = (f"{typed or missing}: there is no {CONFIG_DIR.relative_to(ROOT)}/{missing}.yaml. "
               f"Options for {group}=: {', '.join(options) or 'none'}.")
    if group == 'dset':
        message += (" A dataset of your own gets its config from `python -m od.ingest <folder> --name "
                    "<name>` (or write config/dset/audio/<name>.yaml next to egs/<name>/ manifests made by "
                    "`python -m od.manifest`).")
    return message


# ---- the cluster entry of the team file ------------------------------------------------------
def cluster_name() -> str:
    """The team-file entry in use: AUDIOCRAFT_CLUSTER, else the cluster AudioCraft detects.
    Raises ConfigError listing the entries when the file has none of that name (AudioCraft
    would fail later with a bare omegaconf key error)."""
    use_team_config()
    from omegaconf import OmegaConf
    name = os.environ.get('AUDIOCRAFT_CLUSTER')
    if not name:
        from audiocraft.utils.cluster import get_cluster_type
        name = get_cluster_type().value
    path = os.environ.get('AUDIOCRAFT_CONFIG', str(TEAM_CONFIG))
    entries = [str(k) for k in OmegaConf.load(path)]
    if name not in entries:
        raise ConfigError(f"AUDIOCRAFT_CLUSTER={name}: no such entry in {path} (entries: {', '.join(entries)}).")
    return name


def cluster_slurm() -> tp.Dict[str, tp.Any]:
    """The `slurm:` entry of the selected cluster (what `dora launch`/`dora grid` ask SLURM for).

    Raises ConfigError naming the entries when AUDIOCRAFT_CLUSTER names none, or naming Dora's
    SlurmConfig fields when the entry has a key Dora does not know (a typo would otherwise be
    dropped or fail inside Dora's submission)."""
    from dora.conf import SlurmConfig
    from omegaconf import OmegaConf
    name = cluster_name()
    teams = OmegaConf.load(os.environ.get('AUDIOCRAFT_CONFIG', str(TEAM_CONFIG)))
    slurm = OmegaConf.to_container(teams[name].get('slurm') or OmegaConf.create({}), resolve=True)
    known = set(SlurmConfig.__dataclass_fields__)
    unknown = sorted(set(slurm) - known)
    if unknown:
        raise ConfigError(f"{os.environ.get('AUDIOCRAFT_CONFIG', TEAM_CONFIG)}, cluster {name}: unknown slurm key(s) "
                          f"{', '.join(unknown)}; Dora's SlurmConfig has {', '.join(sorted(known))}.")
    return slurm


def apply_cluster_slurm(slurm_cfg: tp.Any) -> tp.Any:
    """The XP config's `slurm` section updated, in place, with the selected cluster's entry."""
    from omegaconf import open_dict
    with open_dict(slurm_cfg):
        for key, value in cluster_slurm().items():
            slurm_cfg[key] = value
    return slurm_cfg


def slurm_processes(n: int) -> tp.Dict[str, tp.Any]:
    """Dora slurm options for one XP trained by `n` processes (DDP) on the selected cluster.

    With GPUs, Dora runs one SLURM task per GPU: `gpus=n`. On a CPU-only cluster (`gpus: 0`)
    Dora asks for one task; the job then gets `n` times the CPUs and its srun starts `n` tasks
    of them, which submitit numbers as ranks (gloo)."""
    if n < 1:
        raise ValueError(f"processes must be >= 1, got {n}")
    slurm = cluster_slurm()
    if slurm.get('gpus', 1):
        return {'gpus': n}
    cpus = int(slurm.get('cpus_per_task') or 1)
    return {'gpus': 0, 'cpus_per_task': n * cpus,
            'srun_args': [f'--ntasks={n}', f'--ntasks-per-node={n}', f'--cpus-per-task={cpus}']}
