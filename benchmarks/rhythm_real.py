"""Does the rhythm metric separate videos cut on the beat from videos cut off it, on real media?

Builds music videos from freely licensed media that Debian ships — the photos of
`gnome-backgrounds` and the game soundtrack of `planetblupi-music-ogg` — with ffmpeg: for each
track, a 20 s excerpt (from a random point 30-40 s in: several tracks share one 120 bpm grid
from their first bar, so common offsets would put all of them in phase) under a slideshow of
the photos (each shot panning slowly, so there is camera motion as well as cuts), cut

  on     on every second beat of the excerpt (librosa's beat tracker: what an editor's
         beat-snapping does; so the on-beat level is partly by construction),
  off    half a beat later (the same number of cuts, each between two beats),
  random at uniformly random times (the same number of cuts, >= 0.5 s apart),

encoded as H.264 + AAC mp4s, then measured exactly as `od.eval --metrics rhythm` does: visual
rhythm from the mp4 (PySceneDetect cuts, frame-difference motion peaks), beats from the mp4's
own (AAC) audio, the share of cuts and of all visual events with a beat within +-100 ms, and
chance: the same videos with the other tracks' audio (od.metrics.rhythm.rhythm_report).

    .venv/bin/python benchmarks/rhythm_real.py                      # -> benchmarks/rhythm_real/
    .venv/bin/python benchmarks/rhythm_real.py --tracks 4 --seconds 12 --out /tmp/rr

The media come from the installed packages (`apt-get install gnome-backgrounds
planetblupi-music-ogg`), or, when they are not installed, from `apt-get download` of the same
packages unpacked with `dpkg-deb -x` into the work folder (no root needed). Writes
`<out>/results.json` (date, machine, commit, command, package versions, every number) and the
figures `<out>/separation.png` and `<out>/timeline_<condition>.png`.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchmarks.results  # noqa: E402,F401  (od's environment: numba cache, ffmpeg on PATH)
from od.core.environment import ffmpeg_exe  # noqa: E402

PACKAGES = {'gnome-backgrounds': 'usr/share/backgrounds/gnome', 'planetblupi-music-ogg': 'usr/share/planetblupi/music'}
FPS = 25
SIZE = (480, 270)
CONDITIONS = ('on', 'off', 'random')


def media_root(work: Path) -> tp.Tuple[Path, tp.Dict[str, str]]:
    """The folder under which PACKAGES' files lie ('/' when installed) and each package's version."""
    if all(any((Path('/') / sub).glob('*')) for sub in PACKAGES.values()):
        versions = {p: subprocess.run(['dpkg-query', '-W', '-f=${Version}', p], capture_output=True, text=True).stdout
                    for p in PACKAGES}
        return Path('/'), versions
    debs = work / 'debs'
    debs.mkdir(parents=True, exist_ok=True)
    versions = {}
    for package in PACKAGES:
        found = sorted(debs.glob(f'{package}_*.deb'))
        if not found:
            done = subprocess.run(['apt-get', 'download', package], cwd=debs, capture_output=True, text=True)
            found = sorted(debs.glob(f'{package}_*.deb'))
            if not found:
                sys.exit(f"{package} is neither installed nor downloadable ({done.stderr.strip()[-300:]}); "
                         f"apt-get install {' '.join(PACKAGES)}")
        subprocess.run(['dpkg-deb', '-x', str(found[-1]), str(debs / 'root')], check=True)
        versions[package] = subprocess.run(['dpkg-deb', '-f', str(found[-1]), 'Version'], capture_output=True,
                                           text=True).stdout.strip()
    return debs / 'root', versions


def prepare_photos(root: Path, work: Path) -> tp.List[Path]:
    """Every raster wallpaper of the package, scaled once to a little more than the frame (room to pan)."""
    out = []
    for src in sorted((root / PACKAGES['gnome-backgrounds']).glob('*.webp')):
        if src.stat().st_size < 10_000:            # 1-pixel placeholders
            continue
        dst = work / 'photos' / f'{src.stem}.png'
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            subprocess.run([ffmpeg_exe(), '-y', '-loglevel', 'error', '-i', str(src), '-vf',
                            f'scale={int(SIZE[0] * 1.15)}:{int(SIZE[1] * 1.15)}:force_original_aspect_ratio=increase,'
                            f'crop={int(SIZE[0] * 1.15)}:{int(SIZE[1] * 1.15)}', str(dst)], check=True)
        out.append(dst)
    if len(out) < 4:
        sys.exit(f"only {len(out)} photos found under {root / PACKAGES['gnome-backgrounds']}")
    return out


def excerpt(track: Path, start: float, seconds: float, out: Path) -> Path:
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([ffmpeg_exe(), '-y', '-loglevel', 'error', '-ss', str(start), '-t', str(seconds), '-i', str(track),
                        '-ac', '2', '-ar', '44100', str(out)], check=True)
    return out


def cut_times(beats: np.ndarray, condition: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Cut instants on the frame grid, inside (0.5, seconds - 0.5)."""
    on = beats[2::2]
    if condition == 'on':
        cuts = on
    elif condition == 'off':
        period = float(np.median(np.diff(beats)))
        cuts = on + period / 2
    else:   # uniform among placements >= 0.5 s apart: n sorted points in the slack, then spread by the gap
        n, gap = len(on), 0.5
        slack = (seconds - 1.0) - (n - 1) * gap
        if slack <= 0:
            raise ValueError(f"{n} cuts >= {gap} s apart do not fit in {seconds} s")
        cuts = 0.5 + np.sort(rng.uniform(0, slack, n)) + gap * np.arange(n)
    cuts = np.round(cuts[(cuts > 0.5) & (cuts < seconds - 0.5)] * FPS) / FPS
    return np.unique(cuts)


def make_video(photos: tp.Sequence[Path], cuts: np.ndarray, audio: Path, seconds: float, out: Path) -> Path:
    """One ffmpeg command: a shot per photo (exact frame counts via trim), each panning sideways,
    concatenated, with the excerpt as AAC."""
    bounds = np.concatenate([[0], np.round(cuts * FPS), [round(seconds * FPS)]]).astype(int)
    args, chains = [], []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        args += ['-loop', '1', '-framerate', str(FPS), '-i', str(photos[i % len(photos)])]
        n = int(b - a)
        direction = 1 if i % 2 else -1
        x = f"(in_w-{SIZE[0]})*(0.5+{0.45 * direction}*(n/{max(n, 1)}-0.5))"
        chains.append(f"[{i}:v]trim=end_frame={n},setpts=PTS-STARTPTS,crop={SIZE[0]}:{SIZE[1]}:x='{x}':y=(in_h-{SIZE[1]})/2,"
                      f"setsar=1[v{i}]")
    k = len(bounds) - 1
    graph = ';'.join(chains) + ';' + ''.join(f'[v{i}]' for i in range(k)) + f'concat=n={k}:v=1:a=0,format=yuv420p[v]'
    cmd = [ffmpeg_exe(), '-y', '-loglevel', 'error', *args, '-i', str(audio), '-filter_complex', graph, '-map', '[v]',
           '-map', f'{k}:a', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-r', str(FPS),
           '-c:a', 'aac', '-b:a', '128k', '-t', str(seconds), str(out)]
    subprocess.run(cmd, check=True)
    return out


def figures(results: dict, timelines: tp.Dict[str, dict], out: Path) -> tp.List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from od.report.plots import timeline_png
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, kind, title in ((axes[0], 'cuts', 'scene cuts on a beat (±100 ms)'),
                            (axes[1], 'all', 'cuts + motion peaks on a beat (±100 ms)')):
        for j, cond in enumerate(CONDITIONS):
            r = results['conditions'][cond]
            own = [v[kind]['generated']['hit_rate'] for v in r['per_video'].values()]
            chance = [v[kind]['chance']['hit_rate'] for v in r['per_video'].values()]
            ax.bar(j - 0.18, np.nanmean(own), 0.35, color='#2ca02c', label='own audio' if j == 0 else None)
            ax.bar(j + 0.18, np.nanmean(chance), 0.35, color='#aaaaaa', label='chance (re-paired)' if j == 0 else None)
            ax.scatter(np.full(len(own), j - 0.18), own, s=8, color='k', zorder=3)
            ax.scatter(np.full(len(chance), j + 0.18), chance, s=8, color='k', zorder=3)
        ax.set_xticks(range(len(CONDITIONS)), [f'cut {c}' + (' beat' if c != 'random' else '') for c in CONDITIONS])
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 1.05)
    axes[0].set_ylabel('share of visual events')
    axes[0].legend(fontsize=7, loc='upper right')
    fig.tight_layout()
    fig.savefig(out / 'separation.png', dpi=90)
    plt.close(fig)
    names = ['separation.png']
    for cond, times in timelines.items():
        timeline_png(times, out / f'timeline_{cond}.png', f'{times["id"]}: cut {cond} beat', music_label='its own audio')
        names.append(f'timeline_{cond}.png')
    return names


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog=__doc__.split('\n\n', 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tracks', type=int, default=10, help='soundtrack files used (default: %(default)s, all)')
    parser.add_argument('--seconds', type=float, default=20., help='excerpt and video length (default: %(default)s)')
    parser.add_argument('--start', type=float, default=30.,
                        help='excerpts start between this and 10 s later in each track, s (default: %(default)s)')
    parser.add_argument('--work', default='/tmp/od-rhythm-real', help='videos and downloads (default: %(default)s)')
    parser.add_argument('--out', default=str(ROOT / 'benchmarks' / 'rhythm_real'), help='results.json and figures')
    parser.add_argument('--seed', type=int, default=0)
    from benchmarks.results import add_arguments
    add_arguments(parser)
    args = parser.parse_args(argv)
    from od.core.atomic import write_json
    from od.data.visual_rhythm import visual_rhythm
    from od.metrics.rhythm import music_rhythm, rhythm_report
    from od.metrics.rhythm_files import times_of
    started = time.time()
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root, versions = media_root(work)
    photos = prepare_photos(root, work)
    tracks = sorted((root / PACKAGES['planetblupi-music-ogg']).glob('*.ogg'))[:args.tracks]
    rng = np.random.default_rng(args.seed)
    visual: tp.Dict[str, dict] = {c: {} for c in CONDITIONS}
    music: tp.Dict[str, dict] = {c: {} for c in CONDITIONS}
    starts: tp.Dict[str, float] = {}
    planned: tp.Dict[str, dict] = {c: {} for c in CONDITIONS}
    for t, track in enumerate(tracks):
        start = round(args.start + rng.uniform(0, 10), 2)   # the tracks share a 120 bpm grid: no common phase
        starts[track.name] = start
        wav = excerpt(track, start, args.seconds, work / 'audio' / f'{track.stem}_{start:g}+{args.seconds:g}.wav')
        beats = music_rhythm(wav).beats
        order = [photos[(t * 3 + i) % len(photos)] for i in range(len(photos))]
        for cond in CONDITIONS:
            mp4 = work / cond / f'{track.stem}.mp4'
            mp4.parent.mkdir(parents=True, exist_ok=True)
            cuts = cut_times(beats, cond, args.seconds, rng)
            make_video(order, cuts, wav, args.seconds, mp4)
            visual[cond][track.stem] = visual_rhythm(mp4, cache=False)
            found = visual[cond][track.stem].cuts
            planned[cond][track.stem] = {'planned': len(cuts), 'detected': len(found),
                                         'detected_within_1_frame': int(sum(np.any(np.abs(found - c) <= 1.01 / FPS)
                                                                            for c in cuts)),
                                         'motion_peaks_away_from_cuts': int(len(visual[cond][track.stem].events) - len(found))}
            music[cond][track.stem] = music_rhythm(mp4)           # the mp4's own (AAC) audio
        print(f"[rhythm_real] {track.name}: {len(beats)} beats, videos made and measured", flush=True)
    conditions = {c: rhythm_report(visual[c], music[c]) for c in CONDITIONS}
    for c in CONDITIONS:
        conditions[c]['cuts_per_video'] = planned[c]
    first = tracks[0].stem
    timelines = {c: {**times_of(visual[c][first], music[c][first]), 'id': first} for c in ('on', 'off')}
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(['git', 'status', '--porcelain', '--', 'od', 'benchmarks/rhythm_real.py'], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())
    import librosa
    import scenedetect
    cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')), '?') \
        if Path('/proc/cpuinfo').exists() else platform.processor()
    results = {
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'machine': {'host': platform.node(), 'cpu': cpu, 'cores': __import__('os').cpu_count(), 'python': platform.python_version()},
        'commit': commit + (' (with uncommitted changes)' if dirty else ''), 'command': ' '.join([sys.executable, *sys.argv]),
        'seconds': round(time.time() - started, 1),
        'media': {'packages': versions, 'photos': [p.stem for p in photos], 'tracks': [t.name for t in tracks],
                  'excerpt_starts': starts, 'excerpt_seconds': args.seconds},
        'versions': {'librosa': librosa.__version__, 'scenedetect': scenedetect.__version__},
        'summary': {c: {**{kind: {w: conditions[c]['alignment'][kind][w] for w in ('generated', 'chance')}
                           for kind in ('cuts', 'all')},
                        **{k: sum(p[k] for p in planned[c].values()) for k in next(iter(planned[c].values()))}}
                    for c in CONDITIONS},
        'conditions': conditions,
    }
    results['figures'] = figures(results, timelines, out)
    # The figures the docs quote (docs/evaluation.md), in the shared results format: written
    # first, while the tree is as committed (results.json below is a tracked file).
    from benchmarks.results import write as write_results
    write_results('rhythm_real', {
        **{c: {'own_audio_hit_rate': round(results['summary'][c]['cuts']['generated']['hit_rate'], 4),
               'chance_hit_rate': round(results['summary'][c]['cuts']['chance']['hit_rate'], 4),
               'planned': results['summary'][c]['planned'],
               'detected_within_1_frame': results['summary'][c]['detected_within_1_frame']} for c in CONDITIONS},
        'tracks': len(tracks), 'excerpt_seconds': args.seconds})
    write_json(out / 'results.json', results)
    print(f"{'videos cut':<12}{'cuts: own audio':>17}{'chance':>9}{'all events: own':>18}{'chance':>9}")
    for c in CONDITIONS:
        s = results['summary'][c]
        print(f"{c:<12}{s['cuts']['generated']['hit_rate']:>17.3f}{s['cuts']['chance']['hit_rate']:>9.3f}"
              f"{s['all']['generated']['hit_rate']:>18.3f}{s['all']['chance']['hit_rate']:>9.3f}")
    print(f"[rhythm_real] {out / 'results.json'}, figures: {', '.join(results['figures'])}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
