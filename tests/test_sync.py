"""Time-aligned video conditioning (issue 38): `clip_sync` + od's `time` fuse method.

The parity the issue asks for: the conditioning the LM sees at token step t is the same in a
teacher-forced forward (training) and in streaming generation, within one segment and past it
(od's extension loop) — and AudioCraft's own `input_interpolate` does not keep it."""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np
import pytest
import torch

from od.conditioners import time_aligned
from od.conditioners.clip_sync import step_rows
from od.data.frames import write_video

from .helpers import build_solver, colors_data


def sync_overrides(base: Path, duration: float = 3.0) -> tp.List[str]:
    """colors_data's tiny dataset and CLIP, with the time-aligned conditioner."""
    args = [a for a in colors_data(base, duration=duration) if 'clip_frames' not in a and 'conditioner=' not in a]
    return args + ['conditioner=clipemb2music_sync', f'conditioners.self_wav.clip_sync.name={base}/clip',
                   'dataset.segment_duration=1.0', 'dataset.batch_size=2', 'dataset.num_workers=0']


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    """An untrained tiny LM with clip_sync (random weights are enough: this is about what reaches
    the LM, not what it learned), as ODMusicGen, and a 3-s video that cuts from red to blue."""
    from od.inference.musicgen import ODMusicGen
    base = tmp_path_factory.mktemp('sync')
    solver = build_solver(sync_overrides(base))
    lm = solver.model.eval()
    video = base / 'cut.mp4'
    frames = np.concatenate([np.full((37, 32, 32, 3), (220, 30, 30), np.uint8),
                             np.full((38, 32, 32, 3), (30, 60, 220), np.uint8)])
    write_video(video, frames, fps=25)
    return ODMusicGen('sync', solver.compression_model, lm, max_duration=1.0), video


class TimeCapture:
    """What the fuser added to the LM's input at each call, with the streaming offset it was at."""

    def __init__(self, fuser):
        self.calls: tp.List[tp.Tuple[int, torch.Tensor]] = []
        self._offset = 0
        self.handles = [fuser.register_forward_pre_hook(self.pre), fuser.register_forward_hook(self.post)]

    def pre(self, module, args):
        offsets = module._streaming_state.get('offsets')
        self._offset = 0 if offsets is None else int(offsets[0])
        self._input = args[0].clone()

    def post(self, module, args, output):
        self.calls.append((self._offset, (output[0] - self._input).detach()))

    def runs(self) -> tp.List[torch.Tensor]:
        """The calls joined along time, one tensor [B, S, D] per run that started at offset 0."""
        out: tp.List[tp.List[torch.Tensor]] = []
        for offset, added in self.calls:
            if offset == 0:
                out.append([])
            out[-1].append(added)
        return [torch.cat(parts, dim=1) for parts in out]

    def close(self):
        for h in self.handles:
            h.remove()


def teacher_forced(mg, video: Path, start: float, seconds: float) -> torch.Tensor:
    """[1, S, D] the fuser adds in one forward over `seconds` of tokens (training's path)."""
    lm = mg.lm
    steps = int(round(seconds * mg.frame_rate))
    attributes = mg.make_attributes([None], [str(video)], [start], seconds)
    codes = torch.randint(0, lm.card, (1, lm.num_codebooks, steps))
    capture = TimeCapture(lm.fuser)
    try:
        with torch.no_grad():
            lm.compute_predictions(codes, attributes)
    finally:
        capture.close()
    (run,) = capture.runs()
    return run


def streamed(mg, video: Path, duration: float, start: float = 0.) -> tp.List[torch.Tensor]:
    """What the fuser added during generation, per lm.generate call (one per chunk), conditional half."""
    mg.set_generation_params(duration=duration, top_k=50, extend_stride=0.5)
    capture = TimeCapture(mg.lm.fuser)
    try:
        mg.generate_from(media=[str(video)], start=start)
    finally:
        capture.close()
    return [run[:1] for run in capture.runs()]   # CFG doubles the batch: conditional first


def same_steps(stream: torch.Tensor, forced: torch.Tensor, steps: int, what: str = '') -> None:
    """Equal over the steps both saw (generation runs a few steps past the training sequence:
    the codebook delays), each of the first `steps` carrying the condition, nothing past it."""
    n = min(stream.shape[1], forced.shape[1])
    assert n >= steps, (stream.shape, forced.shape)
    torch.testing.assert_close(stream[:, :n], forced[:, :n], msg=lambda m: f"{what}{m}")
    assert stream[:, steps:].abs().amax() == 0 and forced[:, steps:].abs().amax() == 0


def test_audiocraft_input_interpolate_squashes_the_condition_while_streaming():
    """The reason od's `time` method exists, on the installed release (hooks.py pins it)."""
    assert time_aligned.squashes_while_streaming()


def test_step_rows_place_each_token_step_on_the_frame_shown_then():
    assert step_rows(1.0, 25, 25., 25.) == list(range(25))            # debug codec: one frame per step
    assert step_rows(1.0, 25, 25., 50.) == [s // 2 for s in range(50)]  # 50 Hz codec: two steps per frame
    assert step_rows(0.4, 4, 10., 25.) == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]   # steps at 0.02, 0.06, 0.10 s ...: slot of 0.1 s
    assert step_rows(1.0, 3, 25., 25.)[-1] == 2                      # a short video: its last frame holds


def test_teacher_forced_and_streamed_conditioning_agree_within_a_segment(model):
    mg, video = model
    (stream,) = streamed(mg, video, 1.0, start=1.0)
    forced = teacher_forced(mg, video, 1.0, 1.0)
    same_steps(stream, forced, 25)                      # 1 s at the debug codec's 25 Hz
    jumps = (stream[0, 1:25] - stream[0, :24]).norm(dim=-1)
    assert int(jumps.argmax()) + 1 == 12, jumps         # the cut: frame 37 = step 12 of the window at 1.0 s


def test_teacher_forced_and_streamed_conditioning_agree_past_one_segment(model):
    """od's extension: 2.5 s (62 steps at 25 Hz) in chunks of 25 steps every 12 (extend_stride
    0.5 s), each on its own window of the video; every chunk sees what a training forward over
    that window sees, the cut included."""
    mg, video = model
    chunks = streamed(mg, video, 2.5)
    starts = [0, 12, 24, 36, 48]                               # the extension loop's `done`, in steps
    assert len(chunks) == len(starts)
    for stream, done in zip(chunks, starts):
        steps = min(25, 62 - done)
        forced = teacher_forced(mg, video, done / 25, steps / 25)
        same_steps(stream, forced, steps, f"chunk at step {done}: ")
    cut = 37                                                   # first blue frame: 1.48 s at 25 fps
    for stream, done in zip(chunks, starts):
        if done < cut < done + 25:                             # the chunks whose window holds the cut
            jumps = (stream[0, 1:25] - stream[0, :24]).norm(dim=-1)
            assert int(jumps.argmax()) + 1 == cut - done, jumps


def test_input_interpolate_would_not_agree(model, monkeypatch):
    """The same check with the condition fused by AudioCraft's input_interpolate fails: the
    parity above is a property of od's method, not of the test."""
    mg, video = model
    monkeypatch.setitem(mg.lm.fuser.cond2fuse, 'self_wav', 'input_interpolate')
    (stream,) = streamed(mg, video, 1.0, start=1.0)
    forced = teacher_forced(mg, video, 1.0, 1.0)
    n = min(stream.shape[1], forced.shape[1])
    assert not torch.allclose(stream[:, :n], forced[:, :n])


def test_bind_refuses_a_time_fused_condition_that_is_not_time_aligned(model):
    """A `fuser.time` attribute whose conditioner gives one token per window (clip_frames) would
    be added to the first steps only: bind stops with what to do instead."""
    from types import SimpleNamespace
    mg, _ = model
    lm = SimpleNamespace(condition_provider=SimpleNamespace(conditioners={'self_wav': torch.nn.Identity()}),
                         fuser=mg.lm.fuser)
    with pytest.raises(ValueError, match='does not give one frame per token step'):
        time_aligned.bind(lm, 25.)


def test_clip_frames_options_are_refused_by_name(tmp_path):
    """n_frames and pos_emb are clip_frames' (a frame count, a slot embedding): clip_sync says so
    instead of ignoring them."""
    from od.conditioners.registry import build_conditioner
    from od.inference.tiny import write_tiny_clip
    clip = write_tiny_clip(tmp_path / 'clip')
    with pytest.raises(ValueError, match='n_frames belong to clip_frames'):
        build_conditioner('clip_sync', 16, {'name': str(clip), 'n_frames': 4})
    assert build_conditioner('clip_sync', 16, {'name': str(clip)}).fps == 25.
