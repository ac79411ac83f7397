"""Peak memory of od's data preparation against the number of files and the length of a video:
`od.prep` (CLIP frame embeddings), `od.concepts`, `od.data.manifest`. Each case runs in a
fresh process and reports its peak resident set size (`VmHWM`: a child's `ru_maxrss` can carry
the parent's peak across fork+exec), next to a baseline process
that only imports what they import; `benchmarks/ingest_memory.py` does the same for
`od.data.ingest`.

    .venv/bin/python benchmarks/prep_memory.py --counts 8 32 --long 180

Cases: each tool on 8 vs 32 files (6-s clips), and od.prep on one 6-s vs one `--long`-second
1920x1080 H.264 video (ffmpeg's testsrc2 at `--fps`). Prints MB per case and the ratio to the
tool's first case (1.00: flat). The CLIP is od's tiny test CLIP by default (--clip vit-b-32: a
randomly initialised ViT-B-32): frame decoding is what grows with video length. Peak memory does
not depend on the load, so each case runs once. Writes benchmarks/results/prep_memory_<clip>.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402

CHILD = r'''
import json, sys
from od.core.environment import setup
setup()
import od.prep, od.concepts, od.data.manifest  # noqa: F401 (every case imports the same)
import audiocraft.solvers, open_clip  # noqa: F401
tool, args = sys.argv[1], json.loads(sys.argv[2])
if tool == 'prep':
    report = od.prep.prepare(args['overrides'], progress=False)
    assert report['self_wav']['failed'] == 0 and report['self_wav']['items'] > 0, report
elif tool == 'concepts':
    report = od.solvers.concept_data.prepare_concepts('bench', args['root'], dataset_dir=args['out'] + '/d',
                                                egs_dir=args['out'] + '/e', progress=False)
elif tool == 'manifest':
    report = od.data.manifest.build_manifest(args['root'], args['out'], progress=False)
hwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM:'))
print(json.dumps({'peak_mb': int(hwm.split()[1]) / 1024}))
'''


def peak(tool: str, args: dict) -> float:
    out = subprocess.run([sys.executable, '-c', CHILD, tool, json.dumps(args)], cwd=ROOT, capture_output=True,
                         text=True, env={'PYTHONPATH': str(ROOT), 'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': '1',
                                         'PATH': str(Path(sys.executable).parent)})
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])['peak_mb']


def prep_overrides(egs: Path, clip: Path, cache: Path) -> list:
    return ['solver=musicgen/debug', 'conditioner=clipemb2music', 'dset=audio/colors',
            f'conditioners.self_wav.clip_frames.name={clip}', f'conditioners.self_wav.clip_frames.cache_dir={cache}',
            *[f'datasource.{split}={egs}' for split in ('train', 'valid', 'evaluate', 'generate')]]


def write_hd_video(folder: Path, seconds: float, fps: float) -> Path:
    """One `seconds`-long 1920x1080 H.264 video with a wav beside it, and its manifest."""
    import numpy as np
    import soundfile

    from od.core.environment import ffmpeg_exe
    from od.data.manifest import build_manifest
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), '-y', '-loglevel', 'error', '-f', 'lavfi', '-i',
                    f'testsrc2=size=1920x1080:rate={fps:g}', '-t', f'{seconds:g}', '-c:v', 'libx264',
                    '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', str(folder / 'hd.mp4')], check=True)
    t = np.arange(int(seconds * 32000)) / 32000
    soundfile.write(folder / 'hd.wav', (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 32000)
    build_manifest(folder, folder / 'egs', progress=False)
    return folder / 'egs'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: benchmarks/prep_memory.py --counts 8 32 --long 180")
    parser.add_argument('--counts', nargs='+', type=int, default=[8, 32])
    parser.add_argument('--long', type=float, default=180., help="seconds of the long 1080p video")
    parser.add_argument('--fps', type=float, default=10., help="frame rate of the 1080p videos")
    parser.add_argument('--clip', choices=['tiny', 'vit-b-32'], default='tiny')
    results.add_arguments(parser)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from od.core.environment import setup
    from od.data.example_video import write_video_dataset
    from od.inference.tiny import write_random_clip, write_tiny_clip
    from od.solvers.concept_data import write_synthetic_concepts
    setup()
    work = Path(tempfile.mkdtemp(prefix='od-prep-mem-'))
    clip = write_tiny_clip(work / 'clip') if args.clip == 'tiny' else write_random_clip(work / 'clip')
    base = peak('none', {})
    print(f"baseline (imports only): {base:.0f} MB; CLIP {args.clip}")
    rows = []
    for tool in ('prep', 'concepts', 'manifest'):
        first = None
        for count in args.counts:
            if tool == 'prep':
                write_video_dataset(work / f'v{count}', work / f'egs{count}', per_class=(count // 2 - 1, 1),
                                    duration=6.0, size=224, progress=False)
                mb = peak(tool, {'overrides': prep_overrides(work / f'egs{count}' / 'train', clip, work / f'c{count}')
                                 + [f'datasource.valid={work}/egs{count}/test']})
            else:
                root = work / f'audio{count}'
                if not root.exists():
                    write_synthetic_concepts(root, per_concept=count // 2, duration=6.0)
                mb = peak(tool, {'root': str(root), 'out': str(work / f'{tool}_out{count}')})
            first = first or mb
            rows.append((tool, f'{count} files x 6 s', mb, mb / first))
    first = None
    for seconds in (6.0, args.long):
        egs = write_hd_video(work / f'hd{seconds:g}', seconds, args.fps)
        mb = peak('prep', {'overrides': prep_overrides(egs, clip, work / f'hdc{seconds:g}')})
        first = first or mb
        rows.append(('prep', f'1 video 1080p x {seconds:g} s', mb, mb / first))
    for tool, case, mb, ratio in rows:
        print(f"{tool:9s} {case:26s} peak {mb:6.0f} MB (+{mb - base:4.0f} MB over imports) | ratio to first {ratio:.2f}")
    results.write(f'prep_memory_{args.clip}', {'imports_mb': round(base), 'fps': args.fps, **{
        f"{tool}_{case.replace(' ', '_')}_mb": round(mb) for tool, case, mb, _ in rows}})
    return 0


if __name__ == '__main__':
    sys.exit(main())
