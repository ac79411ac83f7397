"""Does the video steer the music? A weight-free score from generations of several videos and
seeds.

For each video, music is generated with the same seeds; each clip is reduced to a feature
vector (`od.metrics.audio_features.log_mel_stats`). The score is

    mean distance between the music of two different videos (two different seeds)
    -----------------------------------------------------------------------------
    mean distance between the music of two seeds of the same video

Both sides compare clips of different seeds, so a model that ignores the video scores about 1;
> 1 means changing the video changes the music more than re-rolling the sampler does. It
needs at least two videos and two seeds.
"""
from __future__ import annotations

import itertools
import typing as tp

import numpy as np


def video_sensitivity(features: tp.Mapping[str, tp.Sequence[np.ndarray]]) -> tp.Dict[str, tp.Any]:
    """features: video -> one feature vector per seed (same seeds, same order, for every video).

    Returns {'score', 'between_videos', 'between_seeds', 'videos', 'seeds', 'per_video': {video:
    {'between_seeds', 'to_other_videos', 'score'}}}.
    """
    videos = list(features)
    seeds = {len(v) for v in features.values()}
    if len(videos) < 2 or len(seeds) != 1 or seeds.pop() < 2:
        raise ValueError("video sensitivity needs >= 2 videos, each with the same >= 2 seeds "
                         f"(got {[len(features[v]) for v in videos]} seeds for {len(videos)} videos)")
    n_seeds = len(features[videos[0]])
    x = {v: np.stack([np.asarray(f, dtype=np.float64) for f in features[v]]) for v in videos}  # [S, D]

    def dist(a, b) -> float:
        return float(np.linalg.norm(a - b))

    within = {v: np.mean([dist(x[v][i], x[v][j]) for i, j in itertools.combinations(range(n_seeds), 2)])
              for v in videos}
    seed_pairs = [(s, t) for s in range(n_seeds) for t in range(n_seeds) if s != t]
    across = {v: np.mean([dist(x[v][s], x[w][t]) for w in videos if w != v for s, t in seed_pairs])
              for v in videos}
    between_videos = float(np.mean([dist(x[v][s], x[w][t]) for v, w in itertools.combinations(videos, 2)
                                    for s, t in seed_pairs]))
    between_seeds = float(np.mean(list(within.values())))
    return {'score': between_videos / max(between_seeds, 1e-12), 'between_videos': between_videos,
            'between_seeds': between_seeds, 'videos': len(videos), 'seeds': n_seeds,
            'per_video': {v: {'between_seeds': float(within[v]), 'to_other_videos': float(across[v]),
                              'score': float(across[v] / max(within[v], 1e-12))} for v in videos}}
