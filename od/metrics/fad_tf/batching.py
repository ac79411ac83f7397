"""Batching for VGGish inference: the examples of consecutive files packed into full batches.

A 10 s file is ten 0.96 s examples; embedding it alone leaves VGGish's 200 MB fc1 layer
memory-bound (batch 5 runs at half the examples/s of batch 64 on a 2-core CPU). `ExampleBatcher`
takes files one after the other and calls the model only on full batches, handing back each
file's embeddings as soon as all its examples are through. `prefetch` computes the next files'
frontend in a thread while the model runs (TF and numpy's FFT release the GIL).

Numpy only (no TF, no Beam): the main environment's tests run it with a stand-in model.
"""
from __future__ import annotations

import collections
import typing as tp
from concurrent.futures import ThreadPoolExecutor

import numpy as np

Key = tp.Hashable
T = tp.TypeVar('T')
R = tp.TypeVar('R')


class ExampleBatcher:
    """`add(key, examples [N, ...])` -> the (key, embeddings [N, D]) of files now complete.

    `embed([B, ...]) -> [B, D]` is called with exactly `batch_size` examples each time, except
    once in `flush()` for what is left. Holds at most one batch plus the file being added.
    """

    def __init__(self, embed: tp.Callable[[np.ndarray], np.ndarray], batch_size: int = 64):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.embed, self.batch_size = embed, batch_size
        self.waiting: tp.Deque[tp.Tuple[Key, int]] = collections.deque()  # files not yet handed back
        self.inputs: tp.List[np.ndarray] = []  # examples not yet embedded, in file order
        self.outputs: tp.List[np.ndarray] = []  # embeddings not yet handed back, in file order
        self.calls = 0

    def _rows(self, parts: tp.List[np.ndarray]) -> int:
        return sum(len(p) for p in parts)

    def _take(self, parts: tp.List[np.ndarray], n: int) -> np.ndarray:
        """The first n rows of `parts` (removed from it)."""
        joined = parts[0] if len(parts) == 1 else np.concatenate(parts)
        parts[:] = [joined[n:]] if len(joined) > n else []
        return joined[:n]

    def _run(self, n: int) -> None:
        self.outputs.append(np.asarray(self.embed(self._take(self.inputs, n))))
        self.calls += 1

    def _complete(self) -> tp.List[tp.Tuple[Key, np.ndarray]]:
        done = []
        while self.waiting and self._rows(self.outputs) >= self.waiting[0][1]:
            key, n = self.waiting.popleft()
            done.append((key, self._take(self.outputs, n)))
        return done

    def add(self, key: Key, examples: np.ndarray) -> tp.List[tp.Tuple[Key, np.ndarray]]:
        if len(examples) == 0:
            raise ValueError(f"{key}: no examples to embed")
        self.waiting.append((key, len(examples)))
        self.inputs.append(examples)
        while self._rows(self.inputs) >= self.batch_size:
            self._run(self.batch_size)
        return self._complete()

    def flush(self) -> tp.List[tp.Tuple[Key, np.ndarray]]:
        rest = self._rows(self.inputs)
        if rest:
            self._run(rest)
        return self._complete()


def prefetch(fn: tp.Callable[[T], R], items: tp.Iterable[T], depth: int = 2) -> tp.Iterator[tp.Tuple[T, R]]:
    """(item, fn(item)) in order, with up to `depth` items computed ahead in one thread.

    An exception of fn is returned as the result (the caller decides what a bad item means).
    """
    def call(item):
        try:
            return fn(item)
        except Exception as exc:  # noqa: BLE001  (handed to the caller, never swallowed)
            return exc

    pending: tp.Deque = collections.deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix='od-frontend') as pool:
        for item in items:
            pending.append((item, pool.submit(call, item)))
            if len(pending) > depth:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
