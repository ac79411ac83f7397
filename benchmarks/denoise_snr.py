"""How much cleaner does --denoise make generated audio? SNR before/after against a known noise.

    .venv/bin/python benchmarks/denoise_snr.py                    # example genres, white + pink noise
    .venv/bin/python benchmarks/denoise_snr.py --seconds 8 --snr 0 10 --denoise spectral stationary

The clean signals are music od generates without a model (the example dataset's synthesised
genres, od/data/example.py), so the clean reference is known exactly; white or pink noise is
added at a chosen SNR, the noisy clip goes through each denoiser, and the SNR of its output
against the clean signal is measured. Printed per denoiser, noise colour and input SNR: SNR in,
SNR out (dB, mean over clips) and the ratio of the two SNRs as power ratios
(10 ** ((out - in) / 10): > 1 means cleaner). `none` is the baseline (output = input, ratio 1);
`known-noise` is an upper bound for spectral gating that od cannot reach blind: noisereduce's
stationary gate given 2 s of the *same* noise (another draw) as its noise profile.
Writes benchmarks/results/denoise_snr.json (denoise_snr_strength_<s>.json for another --strength):
per denoiser, colour and input SNR, the SNR in and out (dB) and their power ratio.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white or pink (1/f power) noise of n samples."""
    white = rng.standard_normal(n)
    if colour == 'pink':
        spectrum = np.fft.rfft(white)
        f = np.arange(len(spectrum), dtype=float)
        spectrum[1:] /= np.sqrt(f[1:])
        spectrum[0] = 0
        white = np.fft.irfft(spectrum, n)
    return white / white.std()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n')[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=6.0, help="clip length (default %(default)s)")
    parser.add_argument('--clips', type=int, default=2, help="clips per genre (default %(default)s)")
    parser.add_argument('--snr', type=float, nargs='+', default=[0., 5., 10., 20.], help="input SNRs in dB")
    parser.add_argument('--noise', nargs='+', default=['white', 'pink'], choices=['white', 'pink'])
    parser.add_argument('--denoise', nargs='+', default=['none', 'spectral', 'stationary', 'known-noise'],
                        help="denoiser specs (as od.generate --denoise; 'none' is the baseline)")
    parser.add_argument('--strength', type=float, default=0.5, help="denoise strength (default: od's 0.5)")
    results.add_arguments(parser)
    args = parser.parse_args(argv)

    from od.data.denoise import build_denoiser, snr_db
    from od.data.example import GENRES, SAMPLE_RATE, synthesise

    clean = [synthesise(genre, args.seconds, seed)[0].astype(np.float64)
             for genre in GENRES for seed in range(args.clips)]
    print(f"{len(clean)} clips ({', '.join(GENRES)}; {args.seconds:g} s, {SAMPLE_RATE} Hz)")
    figures: dict = {'clips': len(clean), 'seconds': args.seconds, 'strength': args.strength}
    total_seconds, total_clips = 0., 0
    print(f"{'denoiser':<12}{'noise':<7}{'SNR in':>8}{'SNR out':>9}{'ratio':>9}{'time/clip':>11}")
    for spec in args.denoise:
        denoiser = None if spec in ('none', 'known-noise') else build_denoiser(spec, args.strength)
        for colour in args.noise:
            for target in args.snr:
                ins, outs, seconds = [], [], 0.
                for i, signal in enumerate(clean):
                    noise = coloured_noise(len(signal), colour, np.random.default_rng(1000 + i))
                    noise *= np.sqrt(np.mean(signal ** 2) / 10 ** (target / 10))
                    noisy = (signal + noise).astype(np.float32)
                    start = time.perf_counter()
                    if spec == 'known-noise':
                        import noisereduce
                        profile = coloured_noise(2 * SAMPLE_RATE, colour, np.random.default_rng(5000 + i))
                        profile *= np.sqrt(np.mean(signal ** 2) / 10 ** (target / 10))
                        out = noisereduce.reduce_noise(y=noisy, sr=SAMPLE_RATE, stationary=True, n_jobs=1,
                                                       y_noise=profile.astype(np.float32), prop_decrease=args.strength)
                    else:
                        out = noisy if denoiser is None else denoiser(noisy, SAMPLE_RATE)
                    seconds += time.perf_counter() - start
                    ins.append(snr_db(signal, noisy))
                    outs.append(snr_db(signal, out))
                snr_in, snr_out = float(np.mean(ins)), float(np.mean(outs))
                ratio = 10 ** ((snr_out - snr_in) / 10)
                figures.setdefault(spec, {}).setdefault(colour, {})[f'snr_{target:g}'] = {
                    'in_db': round(snr_in, 3), 'out_db': round(snr_out, 3), 'ratio': round(ratio, 4)}
                if spec != 'none':
                    total_seconds, total_clips = total_seconds + seconds, total_clips + len(clean)
                print(f"{spec:<12}{colour:<7}{snr_in:>8.2f}{snr_out:>9.2f}{ratio:>9.2f}"
                      f"{seconds / len(clean):>10.2f}s")
    figures['seconds_per_clip'] = round(total_seconds / max(1, total_clips), 3)  # the denoisers, 'none' left out
    results.write('denoise_snr' if args.strength == 0.5 else f'denoise_snr_strength_{args.strength:g}', figures)
    return 0


if __name__ == '__main__':
    sys.exit(main())
