"""Every place od reaches into AudioCraft, laion-clap, demucs or torch beyond subclassing their public classes.

od depends on the published packages and never edits them; a few of their internals are
nonetheless relied on (a module global rebound, a class swapped while a call runs, an
`__init__` skipped, an attribute set on their objects). Each is listed here with where it lives
in od, what it touches and why, the release it was checked against, and a check pinned to that
release's names: `verify()` (run by tests/test_hooks.py and `python -m od.doctor`) fails loudly in
one place when an upgrade moves one of them, instead of silently at run time.

Scopes: the `process` hooks change the process for good and are applied here, by `install()`
(idempotent), which every code path that builds an LM calls first (od.train, the loaders, the
memory plan); `call` hooks rebind a name only while one od call runs and restore it on exit;
`object` hooks touch an object od itself built (an LM, a conditioner) and nothing else. Importing
od applies none of them.

Subclasses that only override public methods (od's MusicGenSolver, TextualInversionSolver,
ODMusicGen, the registry's conditioners) are not hooks and are not listed.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import typing as tp

AUDIOCRAFT_VERSION = '1.3.0'
LAION_CLAP_VERSION = '1.1.7'
DEMUCS_VERSION = '4.0.1'
AUDIOCRAFT = f'audiocraft {AUDIOCRAFT_VERSION}'
LAION_CLAP = f'laion-clap {LAION_CLAP_VERSION}'
SCOPES = ('process', 'call', 'object')


@dataclasses.dataclass
class Hook:
    where: str                       # od's code that relies on it
    touches: str                     # the dependency's name(s)
    why: str
    check: tp.Callable[[], None]     # raises AssertionError/ImportError/AttributeError when it moved
    exercised_by: str = ''           # the test (path::name) that exercises the hook's effect
    checked_with: str = AUDIOCRAFT   # the release of what it touches that `check` was written against
    scope: str = 'call'              # one of SCOPES (module docstring)


def _names_in(func: tp.Callable, *names: str) -> None:
    code = inspect.getsource(func)
    missing = [n for n in names if n not in code]
    assert not missing, f"{func.__module__}.{func.__qualname__} no longer refers to {missing}"


def _params(func: tp.Callable, *names: str) -> None:
    params = inspect.signature(func).parameters
    missing = [n for n in names if n not in params]
    assert not missing, f"{func.__module__}.{func.__qualname__} lost parameters {missing}"


def _check_builder() -> None:
    from audiocraft.models import builders
    _params(builders.get_conditioner_provider, 'output_dim', 'cfg')
    assert 'get_conditioner_provider' in builders.get_lm_model.__code__.co_names, \
        "builders.get_lm_model no longer looks get_conditioner_provider up as a module global"


def _check_fuser_builder() -> None:
    from audiocraft.models import builders
    from audiocraft.modules.conditioners import ConditionFuser

    from .time_aligned import squashes_while_streaming
    _params(builders.get_condition_fuser, 'cfg')
    assert 'get_condition_fuser' in builders.get_lm_model.__code__.co_names, \
        "builders.get_lm_model no longer looks get_condition_fuser up as a module global"
    _names_in(ConditionFuser.forward, "self._streaming_state['offsets']", 'cond2fuse')
    assert squashes_while_streaming(), \
        "AudioCraft's input_interpolate now keeps the streaming offset: od's `time` method may no longer be needed"


def _check_train_alias() -> None:
    from audiocraft.solvers import musicgen
    from audiocraft.utils import checkpoint
    _names_in(checkpoint.resolve_checkpoint_path, 'from audiocraft import train', 'train.main')
    _names_in(musicgen.MusicGenSolver.get_eval_solver_from_sig, 'from audiocraft import train')


def _check_sample_manager() -> None:
    from audiocraft.solvers import musicgen
    from audiocraft.utils.samples.manager import SampleManager
    assert musicgen.SampleManager is SampleManager or issubclass(musicgen.SampleManager, SampleManager)
    _names_in(musicgen.MusicGenSolver.generate_audio, 'SampleManager(')
    _params(SampleManager._get_sample_id, 'index', 'prompt_wav', 'conditions')
    _params(SampleManager._store_audio, 'wav', 'stem_path', 'overwrite')  # the clipping count wraps it
    from audiocraft.data import audio_utils
    _names_in(audio_utils._clip_wav, 'CLIPPING', 'sys.stderr')  # what ClippingCount captures
    _params(SampleManager.add_sample, 'sample_wav', 'epoch', 'index', 'conditions', 'prompt_wav',
            'ground_truth_wav', 'generation_args')


def _check_t5() -> None:
    from audiocraft.modules import conditioners as ac
    _params(ac.TextConditioner.__init__, 'dim', 'output_dim')
    _names_in(ac.T5Conditioner.__init__, 'self.t5_tokenizer', 'self.word_dropout', 'self.autocast',
              'self.normalize_text', "self.__dict__['t5']")
    _names_in(ac.T5Conditioner.tokenize, 'self.t5_tokenizer', 'self.word_dropout', 'self.normalize_text')
    _names_in(ac.T5Conditioner.forward, 'self.t5', 'self.output_proj', 'self.autocast')


def _check_prepare_tokens() -> None:
    from audiocraft.solvers import musicgen
    _params(musicgen.MusicGenSolver._prepare_tokens_and_attributes, 'batch', 'check_synchronization_points')
    _names_in(musicgen.MusicGenSolver.run_step, '_prepare_tokens_and_attributes', 'compute_predictions')


def _check_extension_loop() -> None:
    from audiocraft.models.musicgen import MusicGen
    _params(MusicGen._generate_tokens, 'attributes', 'prompt_tokens', 'progress')
    _names_in(MusicGen._generate_tokens, "attr.wav['self_wav']", 'self.extend_stride')


def _check_laion_clap() -> None:
    from importlib import metadata
    assert metadata.version('laion-clap') == LAION_CLAP_VERSION, metadata.version('laion-clap')
    spec = importlib.util.find_spec('laion_clap')
    assert spec is not None and spec.submodule_search_locations, "laion_clap is not installed as a package"
    from ..encoders.clap import laion_clap_module
    module = laion_clap_module()
    model = module.model
    assert hasattr(model, 'RobertaModel') and hasattr(model, 'create_htsat_model') and hasattr(model, 'CLAP')
    _names_in(model.CLAP.__init__, 'RobertaModel', 'create_htsat_model')
    from clap_module.htsat import HTSAT_Swin_Transformer
    _params(HTSAT_Swin_Transformer.__init__, 'spec_size', 'patch_size', 'window_size', 'config',
            'embed_dim', 'depths', 'num_heads')
    assert hasattr(module.factory, '_MODEL_CONFIGS')


def _check_pann_numba_dir() -> None:
    import os

    from ..core import numba_cache
    from ..encoders.clap import laion_clap_module
    laion_clap_module()
    assert os.environ.get('NUMBA_CACHE_DIR') == str(numba_cache.cache_dir()), (
        f"NUMBA_CACHE_DIR is {os.environ.get('NUMBA_CACHE_DIR')!r} after importing clap_module, "
        f"not od's {numba_cache.cache_dir()}")


def _check_version() -> None:
    import audiocraft
    assert audiocraft.__version__ == AUDIOCRAFT_VERSION, (
        f"od's hooks are written against audiocraft {AUDIOCRAFT_VERSION}, found {audiocraft.__version__}")


def _check_cross_attention() -> None:
    from audiocraft.modules import transformer
    assert transformer._efficient_attention_backend in ('torch', 'xformers')
    _names_in(transformer.StreamingMultiheadAttention.forward, 'self.custom', 'self.cross_attention',
              'self.in_proj_weight', 'self.qk_layer_norm', 'self.mha(', 'self.out_proj', 'self.memory_efficient',
              'self.attention_as_float32')
    _names_in(transformer.StreamingTransformerLayer._cross_attention_block, 'self.cross_attention(')
    _names_in(transformer.StreamingModule.reset_streaming, '_streaming_state')


def _check_cfg_dropout() -> None:
    from audiocraft.modules import conditioners as ac
    from audiocraft.solvers import musicgen
    _names_in(musicgen.MusicGenSolver._prepare_tokens_and_attributes, 'self.model.cfg_dropout(',
              'self.model.att_dropout(', 'to_condition_attributes', 'WavCondition(')
    # SharedTensorAttributes: the dropouts copy with deepcopy and only replace dict values.
    _names_in(ac.AttributeDropout.forward, 'deepcopy(samples)', 'dropout_condition(')
    _names_in(ac.ClassifierFreeGuidanceDropout.forward, 'deepcopy(samples)', 'dropout_condition(')
    _names_in(ac.dropout_condition, 'sample.wav[condition] = ', 'sample.text[condition] = None',
              'sample.joint_embed[condition] = ')
    assert {f.name for f in dataclasses.fields(ac.ConditioningAttributes)} == {'text', 'wav', 'joint_embed'}


def _check_collate_wavs() -> None:
    from audiocraft.modules import conditioners as ac
    _names_in(ac.ConditioningProvider.tokenize, 'self._collate_wavs(')
    _params(ac.ConditioningProvider._collate_wavs, 'samples')
    assert ac.WavCondition._fields == ('wav', 'length', 'sample_rate', 'path', 'seek_time'), ac.WavCondition._fields


def _check_token_cache() -> None:
    from audiocraft.solvers import musicgen
    from audiocraft.utils.cache import CachedBatchLoader, CachedBatchWriter
    _names_in(musicgen.MusicGenSolver.__init__, 'self._cached_batch_writer', 'self._cached_batch_loader',
              "self.dataloaders['original_train']")
    _names_in(musicgen.MusicGenSolver.train, '_cached_batch_loader.start_epoch')
    _params(CachedBatchLoader.__init__, 'cache_folder', 'batch_size', 'num_workers', 'min_length')
    assert hasattr(CachedBatchLoader, '_zip_path') and hasattr(CachedBatchLoader, '_load_one')
    _params(CachedBatchWriter.save, 'content')


def _check_demucs() -> None:
    from audiocraft.modules import conditioners as ac
    from demucs import pretrained
    _params(pretrained.get_model, 'name', 'repo')
    _names_in(ac.ChromaStemConditioner.__init__, 'from demucs import pretrained', "pretrained.get_model('htdemucs')")
    assert (pretrained.REMOTE_ROOT / 'htdemucs.yaml').is_file() and (pretrained.REMOTE_ROOT / 'files.txt').is_file()


def _check_lm_attributes() -> None:
    from audiocraft.models import loaders
    from audiocraft.models.lm import LMModel
    for name in ('od_lora', 'cfg'):
        assert name not in dir(LMModel), f"LMModel now defines {name!r}: od's attribute would shadow it"
    _names_in(loaders.load_lm_model, 'model.cfg = cfg')  # AudioCraft's own loader sets it the same way


HOOKS: tp.List[Hook] = [
    Hook('od/conditioners/hooks.py', 'audiocraft.__version__', "every hook below is pinned to this release", _check_version,
         'tests/test_hooks.py::test_installed_versions_are_the_pinned_ones',
         scope='process'),
    Hook('od/conditioners/registry.py:install (applied by install() below)', 'audiocraft.models.builders.get_conditioner_provider',
         "rebound to od's registry: the closed if/elif builds only AudioCraft's four conditioners, and "
         "get_lm_model (training, continue_from, AudioCraft's loaders) looks it up at call time", _check_builder,
         'tests/test_registry.py::test_install_routes_audiocraft_builder',
         scope='process'),
    Hook('od/conditioners/registry.py:install (applied by install() below)', 'audiocraft.models.builders.get_condition_fuser',
         "rebound to od/conditioners/time_aligned.py's, whose ConditionFuser subclass adds the `time` method: "
         "AudioCraft 1.3's input_interpolate squashes the whole condition into one frame at every streaming step "
         "(checked here), so a time-aligned condition trained with it is not what generation sees",
         _check_fuser_builder,
         'tests/test_sync.py::test_teacher_forced_and_streamed_conditioning_agree_past_one_segment',
         scope='process'),
    Hook('od/conditioners/hooks.py:install(dora_main_module=...) (called by od/train.py)', "sys.modules['audiocraft.train']",
         "AudioCraft resolves //sig/ and continue_from through audiocraft.train.main, whose module cannot "
         "import without upstream's config dir (pip ships none); od's Dora main owns the XPs", _check_train_alias,
         'tests/test_registry.py::test_plugin_conditioner_trains_continues_and_loads',
         scope='process'),
    Hook('od/solvers/samples.py:media_sample_names', 'audiocraft.solvers.musicgen.SampleManager',
         "swapped for MediaSampleManager while od's generate stage runs (samples named by their video, "
         "denoised copies, AudioCraft's per-file CLIPPING lines counted into one summary); restored on exit",
         _check_sample_manager,
         'tests/test_hooks.py::test_generation_names_samples_by_their_media_and_restores_the_manager',
         scope='call'),
    Hook('od/conditioners/t5.py:T5Conditioner.__init__', 'audiocraft.modules.conditioners.T5Conditioner',
         "AudioCraft's __init__ accepts hub names only and would download; od loads a local folder and sets "
         "the attributes tokenize/forward read (a frozen T5 kept out of the module tree through "
         "self.__dict__, as AudioCraft's own __init__ keeps it)", _check_t5,
         'tests/test_t5.py::test_local_t5_embeds_text',
         scope='object'),
    Hook('od/solvers/accumulate.py (run_step override)',
         'audiocraft.solvers.musicgen.MusicGenSolver._prepare_tokens_and_attributes',
         "gradient accumulation splits AudioCraft's step around its token/attribute preparation",
         _check_prepare_tokens,
         'tests/test_accumulate.py::test_accumulated_update_matches_the_batch',
         scope='object'),
    Hook('od/inference/musicgen.py:ODMusicGen._generate_tokens', 'audiocraft.models.musicgen.MusicGen._generate_tokens',
         "AudioCraft's extension loop needs attr.wav['self_wav'] (text-only models have none) and windows "
         "only carried waveforms; od's loop serves the rest", _check_extension_loop,
         'tests/test_inference.py::test_extension_conditions_each_chunk_on_its_own_window',
         scope='object'),
    Hook('od/encoders/clap.py:laion_clap_module, _laion_builders', 'laion_clap clap_module.model (RobertaModel, '
         'create_htsat_model), clap_module.factory._MODEL_CONFIGS, sys.path',
         "laion_clap/__init__ and CLAP.__init__ download tokenizers and RoBERTa weights; od imports only "
         "clap_module (appending its folder to sys.path, lowest priority, because laion's modules import it "
         "top-level) and builds RoBERTa from a local config while a CLAP is built", _check_laion_clap,
         'tests/test_clap.py::test_loader_api',
         scope='call', checked_with=LAION_CLAP),
    Hook('od/core/numba_cache.py:_RestoreAfterPann (an import hook installed with od\'s numba cache folder, by '
         'environment.setup() and numba_cache.ready())',
         "os.environ['NUMBA_CACHE_DIR'] set by (laion_clap.)clap_module.pann_model at import",
         "laion's PANN module points numba at /tmp/ for the whole process (shared by every venv and user "
         "on the machine, outside od's lock); od puts its own cache folder back", _check_pann_numba_dir,
         'tests/test_numba_cache.py::test_laion_clap_import_leaves_od_cache_in_place',
         scope='process', checked_with=LAION_CLAP),
    Hook('od/inference/cross_attention.py:install', 'audiocraft.modules.transformer.StreamingMultiheadAttention '
         '(class swapped to CrossAttentionKV; its projections, mha and streaming state)',
         "cross-attention keys/values are projected once per generate call, not at every decoding step",
         _check_cross_attention,
         'tests/test_clip_batch.py::test_cross_attention_kv_once_gives_the_same_tokens',
         scope='object'),
    Hook('od/conditioners/provider.py:install', 'audiocraft.models.lm.LMModel.cfg_dropout (wrapped), '
         'ConditioningAttributes deep copies in AttributeDropout/ClassifierFreeGuidanceDropout',
         "segment audio od's media conditioners never read is dropped, and the dropouts' deep copies of "
         "every batch's tensors become copies of the attribute dicts",
         _check_cfg_dropout,
         'tests/test_provider.py::test_dropouts_give_audiocrafts_outputs_without_copying_tensors',
         scope='object'),
    Hook('od/conditioners/provider.py:ODConditioningProvider._collate_wavs',
         'audiocraft.modules.conditioners.ConditioningProvider._collate_wavs (overridden), WavCondition fields',
         "the windows of attributes whose conditioner never reads audio are gathered without averaging and "
         "padding each sample's placeholder audio; others go through AudioCraft's",
         _check_collate_wavs,
         'tests/test_provider.py::test_unread_windows_collate_as_audiocraft_gathers_them',
         scope='object'),
    Hook('od/solvers/token_cache.py', 'audiocraft.utils.cache.CachedBatchWriter/CachedBatchLoader, '
         'MusicGenSolver._cached_batch_writer/_cached_batch_loader',
         "AudioCraft's codec-token cache with weights-only plain-data entries in place of pickled MusicInfo",
         _check_token_cache,
         'tests/test_token_cache.py::test_train_step_from_token_cache_finds_the_window',
         scope='object'),
    Hook('od/encoders/demucs.py:serving_htdemucs', 'demucs.pretrained.get_model (rebound while '
         "ChromaStemConditioner.__init__ runs), demucs' remote/htdemucs.yaml and files.txt",
         "demucs reads htdemucs with full unpickling, or imports and calls the class a safetensors file names; "
         "od reads the same files weights-only, checking the class", _check_demucs,
         'tests/test_security.py::test_melody_conditioner_loads_demucs_weights_only',
         scope='call', checked_with=f'demucs {DEMUCS_VERSION}'),
    Hook('od/solvers/lora.py:apply, od/inference/loaders.py:load_lm', "attributes od_lora and cfg set on "
         "AudioCraft's LMModel instances",
         "the LM carries what was applied to it (LoRA adapters, to save and merge them) and the config it was "
         "built from, as AudioCraft's own loader sets lm.cfg; neither is a tensor, so state dicts are unchanged",
         _check_lm_attributes, 'tests/test_hooks.py::test_lm_attributes_leave_the_state_dict_as_audiocraft_saves_it',
         scope='object'),
]


def verify() -> tp.List[str]:
    """Problems found with the hooks ([] when every pinned name is where od expects it)."""
    problems = []
    for hook in HOOKS:
        try:
            hook.check()
        except Exception as exc:  # an upgrade can break a check in many ways: report them all
            problems.append(f"{hook.where} -> {hook.touches}: {type(exc).__name__}: {exc}")
    return problems


def install(dora_main_module: tp.Any = None) -> None:
    """Apply the `process` hooks on AudioCraft (idempotent): the registry's LM builder, and with
    `dora_main_module` (od.train passes itself) `audiocraft.train`. Called by whatever builds an
    LM: od.train, od.inference's loaders, the memory plan. (The one other `process` hook, on
    laion's PANN module, belongs to od's numba cache folder and is installed with it.)"""
    if dora_main_module is not None:
        import sys
        sys.modules.setdefault('audiocraft.train', dora_main_module)
    from . import registry
    registry.install()  # idempotent: a second call finds the builder in place
