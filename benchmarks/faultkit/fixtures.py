"""What the fault suite's cases share, built once under the work folder: tiny random models
(CLIP, CLAP, VGGish), the example and colour datasets, a debug XP trained by `dora run`, and
starting checkpoints with video and reference-audio conditioners made from it."""
from __future__ import annotations

import functools
import subprocess
import typing as tp
from pathlib import Path

from . import checks

DEBUG_FAST = ['solver=musicgen/debug', 'optim.epochs=1', 'optim.updates_per_epoch=4', 'dataset.batch_size=4',
              'dataset.valid.num_samples=4', 'dataset.num_workers=0', 'generate.every=0', 'evaluate.every=0']


def datasource(egs: Path, valid: str = 'valid') -> tp.List[str]:
    return [f'datasource.train={egs}/train', f'datasource.valid={egs}/{valid}',
            f'datasource.evaluate={egs}/{valid}', f'datasource.generate={egs}/{valid}']


class Fixtures:
    def __init__(self, work: Path):
        self.work = work

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)

    @functools.cached_property
    def clip(self) -> Path:
        from od.inference.tiny import write_tiny_clip
        folder = self.path('models', 'clip')
        if not folder.exists():
            write_tiny_clip(folder)
        return folder

    @functools.cached_property
    def clap(self) -> Path:
        from od.inference.tiny import write_tiny_clap
        folder = self.path('models', 'clap')
        if not folder.exists():
            write_tiny_clap(folder)
        return folder

    @functools.cached_property
    def vggish(self) -> tp.Optional[Path]:
        """A random VGGish checkpoint (smoke-test weights), or None without the FAD environment."""
        from od.metrics.vggish import tf_python
        ckpt = self.path('models', 'vggish', 'random.ckpt')
        if not tf_python().exists():
            return None
        if not Path(str(ckpt) + '.index').exists():
            subprocess.run([str(tf_python()), '-m', 'od.fad_tf', 'random-checkpoint', '--out', str(ckpt)],
                           cwd=checks.ROOT, env=checks.env(), check=True, capture_output=True)
        return ckpt

    @functools.cached_property
    def example(self) -> Path:
        """od.data.example's genre dataset (2 train + 1 valid clip per genre, 5 s): base with dataset/, egs/."""
        from od.data.example import write_example_dataset
        base = self.path('example')
        if not (base / 'egs' / 'valid' / 'data.jsonl').exists():
            write_example_dataset(base / 'dataset', base / 'egs', per_genre=(2, 1), duration=5.0, progress=False)
        return base

    @functools.cached_property
    def colors(self) -> Path:
        """The synthetic colour video dataset (2 train + 1 test clip per class, 3 s)."""
        from od.data.example_video import write_video_dataset
        base = self.path('colors')
        if not (base / 'egs' / 'test' / 'data.jsonl').exists():
            write_video_dataset(base / 'dataset', base / 'egs', per_class=(2, 1), duration=3.0, progress=False)
        return base

    def clip_args(self, egs: Path, cache: tp.Optional[Path] = None, valid: str = 'test') -> tp.List[str]:
        """`od.prep` / `dora run` overrides of a tiny CLIP-conditioned debug model on `egs`."""
        args = ['solver=musicgen/debug', 'conditioner=clipemb2music', f'conditioners.self_wav.clip_frames.name={self.clip}',
                'conditioners.self_wav.clip_frames.n_frames=4', *datasource(egs, valid)]
        return args + ([f'conditioners.self_wav.clip_frames.cache_dir={cache}'] if cache else [])

    def clap_args(self, egs: Path, cache: tp.Optional[Path] = None, valid: str = 'valid') -> tp.List[str]:
        args = ['solver=musicgen/debug', 'conditioner=clapemb2music', f'conditioners.self_wav.clap_audio.name={self.clap}',
                'conditioners.self_wav.clap_audio.window=1.0', *datasource(egs, valid)]
        return args + ([f'conditioners.self_wav.clap_audio.cache_dir={cache}'] if cache else [])

    @functools.cached_property
    def xp(self) -> Path:
        """A debug XP trained one short epoch by `dora run` (its checkpoint.th is complete)."""
        dora_dir = self.path('dora-base')
        found = list((dora_dir / 'xps').glob('*/checkpoint.th')) if dora_dir.exists() else []
        if not found:
            res = checks.run(checks.dora(*DEBUG_FAST, *datasource(self.example / 'egs')),
                             checks.env(AUDIOCRAFT_DORA_DIR=str(dora_dir)))
            if res.rc != 0:
                raise RuntimeError(f"the fixture XP did not train: {res.tail(3000)}")
            found = list((dora_dir / 'xps').glob('*/checkpoint.th'))
        return found[0].parent

    def _make_ckpt(self, name: str, overrides: tp.List[str]) -> Path:
        out = self.path('models', name)
        if not out.exists():
            from od.make_ckpt import make_checkpoint
            make_checkpoint(str(self.xp / 'checkpoint.th'), out, overrides)
        return out

    @functools.cached_property
    def video_model(self) -> Path:
        """A starting checkpoint (od.make_ckpt) of the debug LM with a tiny CLIP frame conditioner."""
        return self._make_ckpt('video_model.th', self.clip_args(self.colors / 'egs'))

    @functools.cached_property
    def audio_model(self) -> Path:
        """The same with a tiny CLAP reference-audio conditioner."""
        return self._make_ckpt('audio_model.th', self.clap_args(self.example / 'egs'))

    @functools.cached_property
    def good_audio(self) -> Path:
        """A folder of 4 good 3-s wavs (generated sets, references)."""
        from .media import write_audio
        folder = self.path('good_audio')
        if not folder.exists():
            for i in range(4):
                write_audio(folder / f'ok_{i}.wav', seed=i)
                (folder / f'ok_{i}.txt').write_text('a test tone\n')
        return folder
