"""Clean-up of generated audio (seed 002: a denoiser made generated music noticeably cleaner).

    --denoise                    spectral gating (noisereduce, non-stationary noise estimate)
    --denoise stationary         spectral gating against one noise profile for the whole clip
    --denoise path/to/dns64.th   a learned denoiser: Demucs speech enhancement (facebookresearch's
                                 `denoiser` package) from a weights file given by path

Spectral gating needs no weights: per frequency band it estimates a noise floor (over time, or
once for the clip) and attenuates STFT bins below it (`noisereduce.reduce_noise`). The learned
denoiser is the `denoiser` package's Demucs; od never downloads its weights: give the released
state dict (dns48 / dns64 / master64) or one you trained, as a file. Its architecture is read from
the tensors' shapes (`stride`/`resample` default to the released models' 4 and can be given in a
`{'state': ..., 'kwargs': {...}}` file); it runs at its own 16 kHz, so content above 8 kHz is lost.
Files are read with `torch.load(weights_only=True)`: a pickled model object is refused.

`strength` in [0, 1] scales the effect: noisereduce's `prop_decrease`, or the learned model's wet
share (`strength * estimate + (1 - strength) * input`); od's default is 0.5 (DEFAULT_STRENGTH).

`denoise_file(path, denoiser)` cleans a written wav in place and keeps the original beside it as
`<stem>.raw.wav`; `denoise_copy(src, dst, denoiser)` writes a cleaned copy (training samples).
"""
from __future__ import annotations

import dataclasses
import typing as tp
from pathlib import Path

import numpy as np

RAW_SUFFIX = '.raw'
SPECTRAL = ('spectral', 'stationary')
# Half strength: on noisy synthetic music (benchmarks/denoise_snr.py) it raises the SNR at 0-5 dB
# where full strength also removes enough music to lower it above 0 dB.
DEFAULT_STRENGTH = 0.5


@dataclasses.dataclass
class Denoiser:
    """`apply(wav [C, T] float32, sample_rate) -> [C, T]`; `name` says which (for logs and reports)."""
    name: str
    apply: tp.Callable[[np.ndarray, int], np.ndarray]

    def __call__(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        wav = np.asarray(wav, dtype=np.float32)
        squeeze = wav.ndim == 1
        wav2d = wav[None] if squeeze else wav                                      # [C, T]
        out = np.asarray(self.apply(wav2d, sample_rate), dtype=np.float32)[..., :wav2d.shape[-1]]
        if out.shape != wav2d.shape:
            raise RuntimeError(f"denoiser {self.name} returned shape {out.shape} for input {wav2d.shape}")
        return out[0] if squeeze else out


def spectral_gate(stationary: bool = False, strength: float = DEFAULT_STRENGTH) -> Denoiser:
    """noisereduce's spectral gating (no weights)."""
    import noisereduce

    def apply(wav: np.ndarray, sample_rate: int) -> np.ndarray:
        return noisereduce.reduce_noise(y=wav, sr=sample_rate, stationary=stationary, prop_decrease=strength,
                                        n_jobs=1)
    return Denoiser(f"spectral gating ({'stationary' if stationary else 'non-stationary'}, strength {strength:g})",
                    apply)


def _demucs_kwargs(state: tp.Dict[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    """`denoiser.demucs.Demucs` arguments read from a state dict's tensor shapes."""
    first = state['encoder.0.0.weight']                                   # [hidden, chin, kernel]
    depth = len({k.split('.')[1] for k in state if k.startswith('encoder.')})
    widths = [state[f'encoder.{i}.0.weight'].shape[0] for i in range(depth)]
    return dict(chin=int(first.shape[1]), hidden=int(first.shape[0]), kernel_size=int(first.shape[2]), depth=depth,
                chout=int(state[f'decoder.{depth - 1}.2.weight'].shape[1]),
                glu=int(state['encoder.0.2.weight'].shape[0]) == 2 * int(first.shape[0]),
                growth=float(widths[1] / widths[0]) if depth > 1 else 2.0, max_hidden=int(max(widths)),
                causal='lstm.lstm.weight_ih_l0_reverse' not in state, rescale=0.)


def learned_denoiser(path: tp.Union[str, Path], strength: float = DEFAULT_STRENGTH, device: str = 'cpu') -> Denoiser:
    """The `denoiser` package's Demucs with the weights in `path` (see module doc)."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Denoiser weights not found: {path}. Give the file of a `denoiser` Demucs state "
                                "dict (e.g. the released dns64.th), or use --denoise spectral (no weights). (A word "
                                "right after --denoise is read as its value: put a prompt before --denoise.)")
    from ..core.safe_load import torch_load
    pkg = torch_load(path, 'denoiser weights file')  # names the file; a pickled model object is refused
    packaged = isinstance(pkg, dict) and 'state' in pkg
    state, extra = (pkg['state'], dict(pkg.get('kwargs') or {})) if packaged else (pkg, {})
    if not isinstance(state, dict) or 'encoder.0.0.weight' not in state:
        raise ValueError(f"{path} is not a `denoiser` Demucs state dict (no encoder.0.0.weight).")
    from denoiser.demucs import Demucs
    kwargs = {**_demucs_kwargs(state), **{k: v for k, v in extra.items() if isinstance(v, (int, float, bool))}}
    model = Demucs(**kwargs)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path} does not fit the Demucs its shapes describe ({kwargs}): {str(exc)[:300]}") from exc
    model.eval().to(device)

    @torch.no_grad()
    def apply(wav: np.ndarray, sample_rate: int) -> np.ndarray:
        import julius
        x = torch.from_numpy(wav).to(device)                                        # [C, T]
        x16 = julius.resample_frac(x, sample_rate, model.sample_rate)              # [C, T16]
        # One channel at a time through a mono model (the released ones are mono).
        est = torch.cat([model(ch[None, None])[0] for ch in x16]) if model.chin == 1 else model(x16[None])[0]
        est = julius.resample_frac(est, model.sample_rate, sample_rate)[..., :x.shape[-1]]
        est = torch.nn.functional.pad(est, (0, x.shape[-1] - est.shape[-1]))
        return (strength * est + (1 - strength) * x).cpu().numpy()
    return Denoiser(f"Demucs denoiser {path.name} (hidden {kwargs['hidden']}, depth {kwargs['depth']}, "
                    f"strength {strength:g})", apply)


def build_denoiser(spec: tp.Optional[str], strength: float = DEFAULT_STRENGTH,
                   device: str = 'cpu') -> tp.Optional[Denoiser]:
    """None (no clean-up), 'spectral', 'stationary', or a path to learned weights."""
    if spec is None or str(spec).lower() in ('', 'none', 'false'):
        return None
    if not 0. <= strength <= 1.:
        raise ValueError(f"denoise strength must be in [0, 1], got {strength}")
    spec = str(spec)
    if spec in SPECTRAL:
        return spectral_gate(stationary=spec == 'stationary', strength=strength)
    if spec.lower() in ('true', 'spectral_gating'):
        return spectral_gate(strength=strength)
    return learned_denoiser(spec, strength, device)


def raw_path(path: tp.Union[str, Path]) -> Path:
    """Where the original of a cleaned `x.wav` is kept: `x.raw.wav`."""
    path = Path(path)
    return path.with_name(path.stem + RAW_SUFFIX + path.suffix)


def _read(path: Path) -> tp.Tuple[np.ndarray, int, str]:
    import soundfile
    wav, sample_rate = soundfile.read(str(path), dtype='float32', always_2d=True)    # [T, C]
    return wav.T, sample_rate, soundfile.info(str(path)).subtype


def _write(path: Path, wav: np.ndarray, sample_rate: int, subtype: str) -> Path:
    import soundfile

    from ..core.atomic import atomic_path
    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), np.clip(wav, -1., 1.).T, sample_rate, subtype=subtype, format='WAV')
    return path


def denoise_copy(src: tp.Union[str, Path], dst: tp.Union[str, Path], denoiser: Denoiser) -> Path:
    """`dst` = cleaned `src` (same rate and sample format), written atomically."""
    wav, sample_rate, subtype = _read(Path(src))
    return _write(Path(dst), denoiser(wav, sample_rate), sample_rate, subtype)


def denoise_file(path: tp.Union[str, Path], denoiser: Denoiser) -> tp.Tuple[Path, Path]:
    """Clean the wav at `path` in place; the original is kept as `<stem>.raw.wav`. Returns (clean, raw)."""
    from ..core.atomic import write_bytes
    path = Path(path)
    wav, sample_rate, subtype = _read(path)
    raw = write_bytes(raw_path(path), path.read_bytes())
    _write(path, denoiser(wav, sample_rate), sample_rate, subtype)
    return path, raw


def snr_db(clean: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(|clean|^2 / |estimate - clean|^2): how far `estimate` is from the clean signal."""
    clean, estimate = np.asarray(clean, np.float64), np.asarray(estimate, np.float64)
    noise = np.sum((estimate - clean) ** 2)
    return float(10 * np.log10(np.sum(clean ** 2) / max(noise, 1e-20)))
