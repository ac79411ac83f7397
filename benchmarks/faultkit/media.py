"""Bad inputs as users have them: every audio and video container corrupt, truncated or empty,
NaN/Inf/silent/8-bit/float/multichannel wav, invalid or wrong-typed sidecars, odd file names
(spaces, quotes, a newline, a leading dash, bytes that are not UTF-8) and symlink loops.

Each case has a *token*: the part of its file name that a message about the file must contain
(a non-UTF-8 name can only be printed escaped, so only its ASCII part is looked for).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import typing as tp
from pathlib import Path

import numpy as np

SR = 32000
AUDIO_EXTS = ('.wav', '.mp3', '.flac', '.ogg', '.opus', '.m4a')
VIDEO_EXTS = ('.mp4', '.mkv', '.webm', '.mov', '.avi')
ENCODERS = {'.mp3': ['-c:a', 'libmp3lame'], '.flac': ['-c:a', 'flac'], '.ogg': ['-c:a', 'libvorbis'],
            '.opus': ['-c:a', 'libopus', '-ar', '48000'], '.m4a': ['-c:a', 'aac']}
KEEP, SKIP, EITHER = 'keep', 'skip', 'either'  # what a tool must do with the file


@dataclasses.dataclass
class Case:
    """One input file (`path`), what a tool should do with it, and the token naming it."""
    name: str
    path: Path
    expect: str
    token: str

    @property
    def bad(self) -> bool:
        return self.name.split('/')[0] != 'good'


def tone(seconds: float = 3.0, sr: int = SR, channels: int = 1, freq: float = 220., seed: int = 0) -> np.ndarray:
    """[T, C] float32: a chord with a slow pulse (two seeds differ)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = sum(np.sin(2 * np.pi * freq * k * t + rng.uniform(0, 6)) / k for k in (1, 1.5, 2))
    wav *= 0.5 + 0.5 * np.cos(2 * np.pi * rng.uniform(1, 3) * t) ** 2
    wav = 0.3 * wav / np.abs(wav).max()
    return np.stack([wav * (1 - 0.1 * c) for c in range(channels)], 1).astype(np.float32)


def ffmpeg(*args: str) -> None:
    from od.core.environment import ffmpeg_exe
    subprocess.run([ffmpeg_exe(), '-y', '-loglevel', 'error', *args], check=True)


def write_audio(path: Path, seconds: float = 3.0, seed: int = 0, channels: int = 1) -> Path:
    """A good audio file in the container of its suffix."""
    import soundfile as sf
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = tone(seconds, channels=channels, seed=seed)
    if path.suffix == '.wav':
        sf.write(path, wav, SR, subtype='PCM_16')
        return path
    src = path.with_name(f'.src-{path.stem}.wav')
    sf.write(src, wav, SR, subtype='PCM_16')
    ffmpeg('-i', str(src), *ENCODERS[path.suffix], str(path))
    src.unlink()
    return path


def write_video(path: Path, seconds: float = 3.0, seed: int = 0, audio: bool = True) -> Path:
    """A good music video (frames whose level drifts, and a tone track unless `audio=False`)."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.media import level_frames, write
    from tests.media import tone as stereo_tone
    path.parent.mkdir(parents=True, exist_ok=True)
    levels = np.linspace(40 + 30 * seed, 200, int(seconds * 5))
    sound = stereo_tone(seconds, 48000, 2, seed=seed) if audio else None
    return write(path, level_frames(levels, (64, 48)), fps=5., audio=sound, sr=48000)


def corrupt(path: Path, seed: int = 1) -> Path:
    """Random bytes (about 20 kB) under a media suffix."""
    path.write_bytes(np.random.default_rng(seed).bytes(20000))
    return path


def truncate(path: Path, share: float = 0.4) -> Path:
    """Keep the first `share` of the bytes: a download that stopped."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * share)])
    return path


def audio_cases(folder: Path, sidecars: bool = False, measured: bool = False) -> tp.List[Case]:
    """Good and bad audio files in `folder` (each with a valid `.json` sidecar when `sidecars`,
    plus bad sidecars on good audio). `measured`: for tools that measure or embed what they are
    given (FAD, CLAP embeddings, the analysis), silent and very short audio are valid signals that
    may be kept (a model that generates silence must be scored for it); for training data they
    are not."""
    import soundfile as sf
    folder.mkdir(parents=True, exist_ok=True)
    cases: tp.List[Case] = []

    def add(name: str, path: Path, expect: str, token: tp.Optional[str] = None):
        cases.append(Case(name, path, expect, token or path.stem))

    for ext in AUDIO_EXTS:
        e = ext[1:]
        add(f'good/{e}', write_audio(folder / f'good_{e}{ext}', seed=len(cases)), KEEP)
        add(f'corrupt/{e}', corrupt(folder / f'corrupt_{e}{ext}', seed=len(cases)), SKIP)
        add(f'truncated/{e}', truncate(write_audio(folder / f'truncated_{e}{ext}', seconds=4.0)), EITHER)
        path = folder / f'empty_{e}{ext}'
        path.write_bytes(b'')
        add(f'zero-length/{e}', path, SKIP)
    wav = tone()
    for name, data, subtype, expect in [
            ('nan', np.where(np.arange(len(wav))[:, None] % 997 == 0, np.nan, wav), 'FLOAT', SKIP),
            ('inf', np.where(np.arange(len(wav))[:, None] == 500, np.inf, wav), 'FLOAT', SKIP),
            ('silent', np.zeros_like(wav), 'PCM_16', EITHER if measured else SKIP),
            ('pcm8', wav, 'PCM_U8', EITHER),
            ('float32', wav, 'FLOAT', KEEP),
            ('float64', wav, 'DOUBLE', KEEP),
            ('multichannel6', np.repeat(wav, 6, 1), 'PCM_16', KEEP),
            ('tooshort', wav[:800], 'PCM_16', EITHER if measured else SKIP)]:
        path = folder / f'{name}.wav'
        sf.write(path, data.astype(np.float64 if subtype == 'DOUBLE' else np.float32), SR, subtype=subtype)
        add(f'{name}/wav', path, expect)
    for name, token in [('with space', 'with space'), ("quote'single", "quote'single"),
                        ('quote"double', 'quote"double'), ('-leading-dash', '-leading-dash'),
                        ('newline\nname', 'newline'), ('ünïcode', 'ünïcode')]:
        add(f'name/{token}', write_audio(folder / f'{name}.wav', seed=len(cases)), KEEP, token)
    raw = os.fsencode(folder) + b'/nonutf8_\xe9\xff.wav'
    with open(raw, 'wb') as f:
        f.write((folder / 'good_wav.wav').read_bytes())
    add('name/non-utf8', Path(os.fsdecode(raw)), EITHER, 'nonutf8_')
    os.symlink('selfloop.wav', folder / 'selfloop.wav')
    add('symlink/self-loop', folder / 'selfloop.wav', SKIP, 'selfloop')
    os.symlink('.', folder / 'loopdir')
    os.symlink('nowhere.wav', folder / 'brokenlink.wav')
    add('symlink/broken', folder / 'brokenlink.wav', SKIP, 'brokenlink')
    os.mkdir(folder / 'folder_named.wav')
    add('folder/named-like-audio', folder / 'folder_named.wav', SKIP, 'folder_named')
    (folder / 'notes.txt').write_text('not audio\n')
    if sidecars:
        for case in cases:
            if case.path.is_file() and not case.path.is_symlink():
                case.path.with_suffix('.json').write_text(json.dumps({'description': 'a test tone', 'bpm': 120}))
        for name, text in [('notjson', '{not json'), ('array', '[1, 2]'), ('null', 'null'), ('string', '"title"'),
                           ('bpmstr', '{"bpm": "fast"}'), ('nanbpm', '{"bpm": NaN}'), ('moodsint', '{"moods": [1]}'),
                           ('nonutf8', None), ('missing', None), ('dir', None), ('empty', '')]:
            audio = write_audio(folder / f'sidecar_{name}.wav', seed=len(cases))
            side = audio.with_suffix('.json')
            if name == 'nonutf8':
                side.write_bytes(b'{"title": "\xff\xfe"}')
            elif name == 'dir':
                side.mkdir()
            elif text is not None:
                side.write_text(text)
            add(f'sidecar/{name}', audio, SKIP)
    return cases


def video_cases(folder: Path, with_audio_beside: bool = False, audio: bool = True) -> tp.List[Case]:
    """Good, corrupt, truncated and empty videos of every container, a video without frames'
    worth of data, corrupt images; `with_audio_beside`: each with `<stem>.wav` (+ sidecar)."""
    import soundfile as sf
    folder.mkdir(parents=True, exist_ok=True)
    cases: tp.List[Case] = []
    for ext in VIDEO_EXTS:
        e = ext[1:]
        cases.append(Case(f'good/{e}', write_video(folder / f'vgood_{e}{ext}', seed=len(cases) % 5, audio=audio),
                          KEEP, f'vgood_{e}'))
        cases.append(Case(f'corrupt-video/{e}', corrupt(folder / f'vcorrupt_{e}{ext}', seed=len(cases)), SKIP,
                          f'vcorrupt_{e}'))
        cases.append(Case(f'truncated-video/{e}', truncate(write_video(folder / f'vtrunc_{e}{ext}', 3.0, audio=audio), 0.3),
                          EITHER, f'vtrunc_{e}'))
        empty = folder / f'vempty_{e}{ext}'
        empty.write_bytes(b'')
        cases.append(Case(f'zero-length-video/{e}', empty, SKIP, f'vempty_{e}'))
    (folder / 'vimgbad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 100)
    cases.append(Case('corrupt-image/png', folder / 'vimgbad.png', SKIP, 'vimgbad'))
    (folder / 'vimgempty.jpg').write_bytes(b'')
    cases.append(Case('zero-length-image/jpg', folder / 'vimgempty.jpg', SKIP, 'vimgempty'))
    if with_audio_beside:
        for case in cases:
            sf.write(case.path.with_suffix('.wav'), tone(), SR, subtype='PCM_16')
            case.path.with_suffix('.json').write_text(json.dumps({'description': 'a clip'}))
    return cases
