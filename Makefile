# The two README commands: `make example` (main job) and `make test`. Both install first.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1

.PHONY: install fad-env example example-sync example-genre test test-fast test-stress test-durations

install:
	./install.sh

# The separate TensorFlow environment for VGGish-FAD (.venv-fad; see docs/evaluation.md).
fad-env:
	./install-fad.sh

# Main job: synthetic music videos (the colour decides the chord) -> od.pipeline: ingest, a tiny
# CLIP-conditioned MusicGen trained with Dora, soundtracks for the held-out videos, a report.
# CPU, offline: the debug MusicGen and a random tiny CLIP (checkpoints/tiny-clip), no weights.
example: install
	$(PY) -m od.example_video --raw dataset/colors_raw --per-class 6 0
	$(PY) -m od.pipeline dataset/colors_raw --name example_video --scale debug --clip tiny

# The video decides *when*: 24 music videos that cut at random times with a hit on every cut
# (the colour still decides the chord) -> od.pipeline --sync (the time-aligned conditioner,
# conditioner=clipemb2music_sync); the report says whether the music's onsets follow the cuts
# of the held-out videos, against chance and the videos' own audio. CPU, offline, about a minute.
example-sync: install
	$(PY) -m od.example_video --raw dataset/cuts_raw --cuts --count 24
	$(PY) -m od.pipeline dataset/cuts_raw --name example_sync --scale debug --clip tiny --sync --valid-fraction 0.35

# The first example: a genre lookup-table MusicGen on synthesised clips (dora run, debug solver).
example-genre: install
	$(PY) -m od.example
	dora run solver=musicgen/debug dset=audio/example
	@echo "[od] experiment folder: $$(ls -td logs/xps/*/ | head -1) (samples/, tensorboard/, checkpoint.th)"

# The full suite (what CI runs).
test: install fad-env
	$(PY) -m pytest

# The quick loop while editing: everything but the `slow` (training) and `tf` (.venv-fad) tests.
# One worker per core here: these tests compute, they rarely wait (make test adds a worker for the waits).
test-fast: install
	OD_TEST_WORKERS=$${OD_TEST_WORKERS:-$$(nproc)} $(PY) -m pytest -m "not slow and not tf"

# The stress tier, not part of `make test`: the suite's checks that are repeated to catch what
# only some timing shows, run for longer. Now: the numba cache race (tests/test_numba_cache.py)
# for the issue's 20 rounds, each from an empty cache (`make test` runs one);
# `make test-stress OD_NUMBA_RACE_ROUNDS=50` for more.
# `make test-stress OD_NUMBA_RACE_UNLOCKED=1` runs it without od's lock: it must fail.
OD_NUMBA_RACE_ROUNDS ?= 20
OD_NUMBA_RACE_UNLOCKED ?= 0
test-stress: install
	OD_NUMBA_RACE_ROUNDS=$(OD_NUMBA_RACE_ROUNDS) OD_NUMBA_RACE_UNLOCKED=$(OD_NUMBA_RACE_UNLOCKED) $(PY) -m pytest -n 0 \
		tests/test_numba_cache.py::test_two_processes_on_an_empty_cache_never_crash

# Rewrites tests/durations.json (seconds per test module): the order the workers take modules in,
# the longest first. Run it on a quiet 2-core machine after adding or moving a slow module.
test-durations: install fad-env
	OD_RECORD_DURATIONS=1 $(PY) -m pytest
