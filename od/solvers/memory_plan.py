"""How much device memory a MusicGen training run needs, before it starts.

    python -m od.doctor --plan solver=musicgen/finetune model/lm/model_scale=small conditioner=clipemb2music
    python -m od.doctor --plan --gpu-memory 24 solver=musicgen/finetune_lora model/lm/model_scale=medium

What is counted (bytes on the training device):

- weights: every LM tensor (float32 while training; autocast computes in float16 without
  keeping a second copy of frozen weights), plus the compression model;
- gradients: float32, one per trained parameter; optimizer state: 2 per trained parameter for
  Adam/AdamW, 3 for D-Adaptation Adam; autocast's cache of float16 copies of the trained weights;
- EMA: a float32 copy of the LM where `optim.ema.device` says (counted on the device only when
  it is the training device); AudioCraft's best-state copy lives in CPU memory;
- activations: the tensors autograd keeps for the backward pass, measured, not guessed: the
  LM (built on PyTorch's `meta` device, so nothing is allocated) runs a forward and the loss on
  one sample of the configured segment while `saved_tensors_hooks` adds up what is saved
  (parameters and repeated saves of one tensor counted once). Attention kernels that keep no
  T x T matrix (flash / memory-efficient SDPA on GPU and CPU) are accounted for by leaving those
  matrices out. With autocast, matmul inputs are kept in float16: the transformer's
  activations count 2 bytes per value, the logits and loss stay float32;
- workspace: the backward's largest transient (the logits' gradient and its softmax), once.

The total is activations x micro-batch (`dataset.batch_size / optim.accumulate` per process)
plus the rest; when it exceeds the device memory, the plan names the override that fits
(a smaller micro-batch with `optim.accumulate`, LoRA, cross-attention-only, a shorter segment).
Conditioner tokens are taken as 64 per conditioner (their cost is negligible next to T).
"""
from __future__ import annotations

import dataclasses
import typing as tp

import torch
import torch.nn.functional as F

from .trainable import spec_of

GiB = 2 ** 30
COND_TOKENS = 64
OPTIMIZER_STATES = {'adam': 2, 'adamw': 2, 'dadam': 3}


@dataclasses.dataclass
class Plan:
    params: int                 # LM parameters (adapters included)
    trainable: int
    weights: int                # bytes on the device: LM + compression model
    gradients: int
    optimizer: int
    autocast_cache: int
    ema_device: int             # EMA copy on the training device (0 when on CPU or off)
    cpu_copies: int             # best state (+ EMA on CPU) in host memory
    activations_per_sample: int
    activations_per_step: int   # saved tensors that do not grow with the batch (LoRA's W + BA)
    workspace_per_sample: int
    encode_per_sample: int      # the compression model's largest transient while encoding (no grad)
    micro_batch: int
    batch: int
    accumulate: int
    segment: float
    frames: int
    autocast: bool
    notes: tp.List[str] = dataclasses.field(default_factory=list)

    @property
    def static(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.autocast_cache + self.ema_device

    @property
    def per_micro_batch(self) -> int:
        """The larger of encoding the micro-batch and its LM forward + backward."""
        lm = self.activations_per_step + (self.activations_per_sample + self.workspace_per_sample) * self.micro_batch
        return max(lm, self.encode_per_sample * self.micro_batch)

    @property
    def total(self) -> int:
        return self.static + self.per_micro_batch

    def fits(self, device_bytes: int, headroom: float = 0.9) -> bool:
        return self.total <= headroom * device_bytes


def _gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB"


def lm_config(cfg) -> tp.Any:
    """A resolved copy of an XP config for building on the meta device (conditioners left out:
    their outputs are fed directly, so no frozen encoder is loaded)."""
    from omegaconf import OmegaConf
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))
    out.device = 'meta'
    out.conditioners = {}
    return out


def build_meta_lm(cfg):
    """The LM of `cfg` on the meta device (with its LoRA adapters when `trainable` names lora)."""
    from audiocraft.models import builders

    from ..conditioners import hooks
    from . import lora
    hooks.install()  # the registry's LM builder (od/conditioners/hooks.py)
    meta_cfg = lm_config(cfg)
    with torch.device('meta'):
        lm = builders.get_lm_model(meta_cfg)
        settings = lora.settings_from_cfg(cfg)
        if settings is not None:
            lora.apply(lm, settings)
    return lm


def cross_attributes(cfg) -> tp.List[str]:
    fuser = cfg.get('fuser') or {}
    return [str(a) for a in (fuser.get('cross') or [])]


def activation_bytes(lm, frames: int, cross: tp.Sequence[str], half: bool) -> tp.Tuple[int, int, int]:
    """(per sample, per step, workspace per sample) of what autograd keeps: measured at batch 1
    and 2, so tensors that do not grow with the batch (LoRA's adapted weights W + BA, kept for
    the backward of each wrapped layer) are counted once per micro-batch, not per sample."""
    one, workspace = saved_activation_bytes(lm, frames, cross, half, batch=1)
    two, _ = saved_activation_bytes(lm, frames, cross, half, batch=2)
    per_sample = max(0, two - one)
    return per_sample, max(0, one - per_sample), workspace


def saved_activation_bytes(lm, frames: int, cross: tp.Sequence[str], half: bool,
                           batch: int = 1) -> tp.Tuple[int, int]:
    """(bytes autograd keeps for `batch` samples of `frames` steps, workspace of the backward
    per sample). `half`: autocast (float16 matmul inputs): 2 bytes per transformer value."""
    K, card, dim = lm.num_codebooks, lm.card, lm.dim
    codes = torch.zeros(batch, K, frames, dtype=torch.long, device='meta')
    conditions = {a: (torch.zeros(batch, COND_TOKENS, dim, device='meta'),
                      torch.ones(batch, COND_TOKENS, device='meta')) for a in cross}
    params = {id(p) for p in lm.parameters()} | {id(b) for b in lm.buffers()}
    seen: tp.Set[tp.Tuple[int, tp.Tuple[int, ...], tp.Tuple[int, ...], int]] = set()
    totals = {'transformer': 0, 'loss': 0}
    part = ['transformer']

    def pack(t: torch.Tensor):
        base = t._base if t._base is not None else t
        if id(base) in params or id(t) in params:
            return t
        key = (id(base), tuple(t.shape), tuple(t.stride()), t.storage_offset())
        if key in seen:
            return t
        seen.add(key)
        if t.dim() >= 2 and t.shape[-1] == t.shape[-2] and t.shape[-1] >= frames:
            return t  # a T x T attention matrix: flash / memory-efficient kernels keep none
        n = t.numel() * t.element_size()
        if half and part[0] == 'transformer' and t.is_floating_point():
            n //= 2
        totals[part[0]] += n
        return t

    lm.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = lm.compute_predictions(codes, [], conditions)
        part[0] = 'loss'
        logits = out.logits
        for k in range(K):  # AudioCraft's per-codebook cross-entropy (float32 under autocast)
            F.cross_entropy(logits[:, k].reshape(-1, card).float(), codes[:, k].reshape(-1))
    logits_bytes = K * frames * card * 4
    workspace = 2 * logits_bytes  # the gradient of the logits and its float32 softmax
    return totals['transformer'] + totals['loss'], workspace


def _frame_rate(cfg) -> float:
    """Token frames per second of the configured compression model (known models by name)."""
    spec = str(cfg.get('compression_model_checkpoint', ''))
    if 'debug_compression_model' in spec:
        return 25.0
    return 50.0  # facebook/encodec_32khz (MusicGen's codec) and AudioCraft's 32 kHz models


class LiveBytes:
    """Peak bytes of the tensors alive while ops run on the meta device: every op's outputs are
    counted until Python frees them (as it would the real tensors), so padding copies, residual
    branches and activations that overlap are all in the peak."""

    def __init__(self, conv_columns: bool = False):
        self.live = self.peak = 0
        self.conv_columns = conv_columns  # CPU convolutions unfold their input (im2col) first

    def __enter__(self):
        import weakref

        from torch.utils._python_dispatch import TorchDispatchMode
        owner = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                if owner.conv_columns and func is torch.ops.aten.convolution.default:
                    weight = args[1]  # [C_out, C_in / groups, k]: the columns are [B, C_in * k, T_out]
                    columns = out.shape[0] * weight[0].numel() * out.shape[-1] * out.element_size()
                    owner.peak = max(owner.peak, owner.live + columns)
                for t in (out if isinstance(out, (tuple, list)) else (out,)):
                    if isinstance(t, torch.Tensor) and t._base is None:
                        n = t.numel() * t.element_size()
                        owner.live += n
                        owner.peak = max(owner.peak, owner.live)
                        weakref.finalize(t, owner._free, n)
                return out

        self.mode = Mode()
        self.mode.__enter__()
        return self

    def _free(self, n: int) -> None:
        self.live -= n

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)


def encode_transient_bytes(compression_model, samples: int, channels: int, cpu: bool = False) -> int:
    """Peak memory of `compression_model` encoding one sample of `samples` audio samples, input
    included (simulated on a meta copy: nothing is allocated). `cpu`: with the im2col buffers
    of CPU convolutions (GPU libraries bound their workspace)."""
    import copy
    meta = copy.deepcopy(compression_model).to('meta')
    with torch.no_grad(), LiveBytes(conv_columns=cpu) as live:
        audio = torch.zeros(1, channels, samples, device='meta')
        meta.encode(audio)
    return live.peak


def plan(cfg, lm=None, device_is_gpu: tp.Optional[bool] = None,
         compression_params: tp.Optional[int] = None, compression_model=None) -> Plan:
    """The memory plan of an XP config. `lm`: the solver's model (exact counts); else the LM is
    built on the meta device. `compression_params`: the codec's size when known;
    `compression_model`: the codec itself (its encoding transient is measured on meta)."""
    from . import lora
    notes: tp.List[str] = []
    meta = build_meta_lm(cfg)
    _freeze_like_the_solver(meta, cfg)  # what trains decides what autograd keeps
    counted = lm if lm is not None else meta
    if lm is None:
        if cross_attributes(cfg):
            notes.append("conditioner projections not counted (their frozen encoders are not loaded)")
    params = sum(p.numel() for p in counted.parameters())
    trainable = sum(p.numel() for p in counted.parameters() if p.requires_grad)
    bytes_of = sum(p.numel() * p.element_size() for p in counted.parameters())
    bytes_of = bytes_of if lm is not None and next(lm.parameters()).device.type != 'meta' else params * 4
    gpu = device_is_gpu if device_is_gpu is not None else torch.cuda.is_available()
    autocast = bool(cfg.get('autocast', False)) and gpu
    optim = cfg.optim
    states = OPTIMIZER_STATES.get(str(optim.optimizer), 2)
    ema = optim.get('ema') or {}
    ema_bytes = params * 4 if ema.get('use', False) else 0
    ema_on_device = ema_bytes if (str(ema.get('device', 'cpu')).startswith('cuda') == gpu) else 0
    accumulate = int(optim.get('accumulate', 1) or 1)
    batch = int(cfg.dataset.batch_size)
    micro = max(1, batch // accumulate)
    segment = float(cfg.dataset.segment_duration)
    frames = int(round(segment * _frame_rate(cfg)))
    activations, fixed, workspace = activation_bytes(meta, frames, cross_attributes(cfg), half=autocast)
    compression = 4 * (compression_params if compression_params is not None else _codec_params(cfg))
    encode = 0
    if compression_model is not None:
        try:
            encode = encode_transient_bytes(compression_model, int(segment * cfg.sample_rate), int(cfg.channels),
                                            cpu=not gpu)
        except RuntimeError as exc:  # a codec that reads tensor values (transformers' EnCodec pads with .item())
            notes.append(f"the compression model's encoding transient is not counted (it does not run on the "
                         f"meta device: {str(exc).splitlines()[0][:80]})")
    else:
        notes.append("the compression model's encoding transient is not counted (codec not loaded)")
    if lora.uses_lora(spec_of(cfg)):
        notes.append(getattr(counted, 'od_lora').describe())
    return Plan(params=params, trainable=trainable, weights=bytes_of + compression,
                gradients=trainable * 4, optimizer=states * trainable * 4,
                autocast_cache=2 * trainable if autocast else 0, ema_device=ema_on_device,
                cpu_copies=params * 4 + (ema_bytes - ema_on_device),
                activations_per_sample=activations, activations_per_step=fixed, workspace_per_sample=workspace,
                encode_per_sample=encode,
                micro_batch=micro,
                batch=batch, accumulate=accumulate, segment=segment, frames=frames, autocast=autocast,
                notes=notes)


def _codec_params(cfg) -> int:
    spec = str(cfg.get('compression_model_checkpoint', ''))
    if 'debug_compression_model' in spec:
        return 0  # a few thousand parameters
    return 59_000_000  # EnCodec 32 kHz (facebook/encodec_32khz, MusicGen's codec)


def _freeze_like_the_solver(lm, cfg) -> None:
    """requires_grad as od's solver sets it (patterns that match nothing here -- the conditioners
    are not built -- are ignored rather than refused)."""
    from .trainable import apply_trainable, spec_of
    if apply_trainable(lm, spec_of(cfg), strict=False) is None:
        for p in lm.parameters():
            p.requires_grad_(True)


def suggestion(cfg, result: Plan, device_bytes: int) -> tp.Optional[str]:
    """The override that makes `cfg` fit `device_bytes`, or None when it fits already."""
    if result.fits(device_bytes):
        return None
    room = 0.9 * device_bytes - result.static - result.activations_per_step
    per_sample = max(result.activations_per_sample + result.workspace_per_sample, result.encode_per_sample)
    if room > per_sample:
        fit = int(room // per_sample)
        for n in range(1, result.batch + 1):
            if result.batch % n == 0 and result.batch // n <= fit:
                return f"optim.accumulate={n}  (micro-batch {result.batch // n}, the same update of {result.batch})"
    if spec_of(cfg) in ('all', None):
        return "trainable=lora  (or 'trainable=[condition_provider,cross_attention]')"
    shorter = max(1.0, result.segment * max(0.1, room / max(1, per_sample)))
    return f"dataset.segment_duration={shorter:.0f} optim.accumulate={result.batch}"


def describe(result: Plan, device_bytes: tp.Optional[int], device_name: str = '') -> tp.List[str]:
    """The plan as the lines od.doctor --plan and every dora run print."""
    lines = [
        f"parameters {result.params:,} ({result.trainable:,} trainable, {100 * result.trainable / max(1, result.params):.2f}%)",
        f"weights {_gib(result.weights)} + gradients {_gib(result.gradients)} + optimizer {_gib(result.optimizer)}"
        + (f" + autocast cache {_gib(result.autocast_cache)}" if result.autocast_cache else '')
        + (f" + EMA {_gib(result.ema_device)}" if result.ema_device else ''),
        f"activations {_gib(result.activations_per_sample)} per sample ({result.segment:g} s = {result.frames} frames"
        f"{', autocast' if result.autocast else ', float32'}) + workspace {_gib(result.workspace_per_sample)}"
        f" x micro-batch {result.micro_batch} (batch {result.batch} / accumulate {result.accumulate})"
        + (f" + {_gib(result.activations_per_step)} per micro-batch" if result.activations_per_step else '')
        + (f"; encoding {_gib(result.encode_per_sample)} per sample" if result.encode_per_sample else ''),
        f"total {_gib(result.total)} on the training device; host copies (best state{', EMA' if result.cpu_copies > result.params * 4 else ''}) {_gib(result.cpu_copies)}",
    ]
    lines += [f"note: {n}" for n in result.notes]
    if device_bytes:
        verdict = 'fits' if result.fits(device_bytes) else 'does NOT fit'
        lines.append(f"{verdict} {device_name or 'the device'} ({_gib(device_bytes)}, 90% usable)")
    return lines
