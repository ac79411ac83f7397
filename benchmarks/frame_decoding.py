"""PyAV (od's frame reader, by presentation timestamp) against decord (od's reader before) on
H.264 mp4, the format both decode: the whole video at the cache rate (what `od.prep` and the
first training epoch do) and one training window (`use_cache=false`, od.clip without cache).

    .venv/bin/python benchmarks/frame_decoding.py --seconds 20 --size 640x360 --fps 30

Prints seconds per call (medians) and the ratio PyAV / decord (< 1: PyAV is faster): the two
readers alternate within the run (order reversed every round) and the ratio is the median of
the per-round ratios. decord is read as it was used (`get_batch` of `floor(t * average_fps)`
indices). Writes benchmarks/results/frame_decoding.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402


def decord_frames(path: Path, times: np.ndarray) -> np.ndarray:
    import decord
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    index = np.clip(np.floor(times * reader.get_avg_fps()).astype(int), 0, len(reader) - 1)
    return reader.get_batch(list(index)).asnumpy()


def pyav_frames(path: Path, times: np.ndarray) -> np.ndarray:
    from od.data.media import frames_at
    return frames_at(path, times)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: benchmarks/frame_decoding.py --seconds 20 --size 640x360")
    parser.add_argument('--seconds', type=float, default=20.)
    parser.add_argument('--size', default='640x360')
    parser.add_argument('--fps', type=float, default=30.)
    parser.add_argument('--repeats', type=int, default=5, help="alternated rounds (default: %(default)s)")
    results.add_arguments(parser)
    args = parser.parse_args()
    from od.data.frames import frame_times, write_video
    w, h = (int(x) for x in args.size.split('x'))
    rng = np.random.default_rng(0)
    count = int(args.seconds * args.fps)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 4 * i, axis=1) for i in range(count)])  # moving texture
    work = Path(tempfile.mkdtemp(prefix='od-frames-bench-'))
    video = write_video(work / 'bench.mp4', frames, args.fps)
    del frames
    cases = {'whole_video': ('whole video at 7.5 fps (cache fill)', frame_times(0., args.seconds, fps=7.5)[:-1]),
             'window': ('one 4-s window, 30 frames, at 10 s',
                        frame_times(min(10., args.seconds - 4), 4., n_frames=30))}
    print(f"H.264 {w}x{h} {args.fps:g} fps, {args.seconds:g} s ({count} frames); {args.repeats} alternated rounds")
    figures = {'size': args.size, 'fps': args.fps, 'seconds': args.seconds, 'rounds': args.repeats}
    for key, (name, times) in cases.items():
        a, b = pyav_frames(video, times), decord_frames(video, times)
        assert a.shape == b.shape, (a.shape, b.shape)
        runs = results.alternate({'pyav': lambda: pyav_frames(video, times),
                                  'decord': lambda: decord_frames(video, times)}, args.repeats)
        ratio = results.median_ratio(runs['pyav'], runs['decord'])
        t_av, t_de = statistics.median(runs['pyav']), statistics.median(runs['decord'])
        print(f"{name:<40} PyAV {t_av:7.3f} s | decord {t_de:7.3f} s | ratio PyAV/decord {ratio:5.2f}")
        figures[key] = {'pyav_s': round(t_av, 4), 'decord_s': round(t_de, 4), 'ratio': round(ratio, 3)}
    results.write('frame_decoding', figures)
    return 0


if __name__ == '__main__':
    sys.exit(main())
