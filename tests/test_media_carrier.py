"""The media carrier (od/conditioners/media_carrier.py): a media file's window, made and read
back in seconds, told apart from real audio, and made nowhere else in od."""
from __future__ import annotations

import ast

import torch

from od.conditioners.media_carrier import (
    audio_condition,
    batch,
    carries_audio,
    is_null,
    is_placeholder,
    media_condition,
    placeholder,
    windows,
    with_window,
)

from .helpers import ROOT

SR = 32000


def test_a_window_comes_back_in_the_seconds_it_was_made_with():
    cond = media_condition('clips/a b.mp4', 2.5, 10., SR)
    assert windows(cond) == [('clips/a b.mp4', 2.5, 10.)]
    assert is_placeholder(cond) and not carries_audio(cond) and not is_null(cond)
    later = with_window(cond, 7., 3.25)
    assert windows(later) == [('clips/a b.mp4', 7., 3.25)]
    assert windows(cond) == [('clips/a b.mp4', 2.5, 10.)]  # the original is untouched


def test_the_null_condition_has_no_media_and_no_length():
    cond = media_condition(None, 4., 10., SR)
    assert is_null(cond) and windows(cond) == [(None, 4., 0.)]


def test_real_audio_is_told_apart_and_a_placeholder_keeps_the_window():
    wav = torch.randn(1, 1, SR)
    melody = audio_condition(wav, SR)
    assert carries_audio(melody) and not is_placeholder(melody)
    assert windows(melody) == [(None, 0., 1.)]
    held = placeholder(audio_condition(wav, SR, 'ref.wav'))
    assert is_placeholder(held) and windows(held) == [('ref.wav', 0., 1.)]
    assert placeholder(held) is held


def test_a_batch_keeps_every_sample_window():
    conds = [media_condition('a.mp4', 0., 2., SR), media_condition(None, 0., 2., SR),
             media_condition('b.png', 1., 0.5, SR)]
    both = batch(conds)
    assert both.wav.shape == (3, 1, 1)
    assert windows(both) == [('a.mp4', 0., 2.), (None, 0., 0.), ('b.png', 1., 0.5)]


def test_no_other_module_builds_or_reads_the_carrier_by_hand():
    """WavCondition(...), `.seek_time` and `.path[0]` of a condition appear in the carrier only."""
    found = []
    for path in sorted((ROOT / 'od').rglob('*.py')):
        if path.name == 'media_carrier.py':
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith('WavCondition'):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} builds a WavCondition")
            if isinstance(node, ast.Attribute) and node.attr == 'seek_time':
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} reads .seek_time")
    assert not found, '\n'.join(found)
