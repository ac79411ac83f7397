# The two README commands: `make example` (main job) and `make test`. Both install first.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1

.PHONY: install fad-env example test

install:
	./install.sh

# The separate TensorFlow environment for VGGish-FAD (.venv-fad; see README "Evaluation (FAD)").
fad-env:
	./install-fad.sh

# Main job: write the example dataset, then train the debug MusicGen with Dora (CPU, offline).
example: install
	$(PY) -m od.data.example
	dora run solver=musicgen/debug dset=audio/example
	@echo "[od] experiment folder: $$(ls -td logs/xps/*/ | head -1) (samples/, tensorboard/, checkpoint.th)"

test: install fad-env
	$(PY) -m pytest
