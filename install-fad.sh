#!/usr/bin/env bash
# Build od's separate VGGish-FAD environment (.venv-fad, or $OD_FAD_VENV): tensorflow CPU,
# tf-slim, apache-beam, dask + distributed (Beam's Dask runner), numpy, scipy, soundfile from
# requirements-fad.txt. No torch.
# The main environment finds it as $TF_PYTHON_EXE (default .venv-fad/bin/python).
# Idempotent: a stamp records the hash of requirements-fad.txt; unchanged -> only the self-check.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV="${OD_FAD_VENV:-.venv-fad}"
STAMP="$VENV/.od-fad-stamp"
want_stamp() { cat requirements-fad.txt install-fad.sh | sha256sum | cut -d' ' -f1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "[od] creating the FAD environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
WANT="$(want_stamp)"  # before installing: an edit made meanwhile is not stamped as installed
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "[od] FAD environment in $VENV is up to date"
else
  start=$(date +%s)
  echo "[od] installing tensorflow + tf-slim + apache-beam into $VENV (about a minute, ~2 GB)"
  "$VENV/bin/python" -m pip install --quiet -r requirements-fad.txt 2> >(grep -v "^WARNING: Location" >&2)
  echo "$WANT" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
  echo "[od] FAD environment took $(( $(date +%s) - start )) s"
fi
# Self-check: the TF side imports (od is found through PYTHONPATH, not installed here).
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" -c \
  'import tensorflow as tf, tf_slim, apache_beam, dask.distributed, od.metrics.fad_tf.vggish, od.metrics.fad_tf.pipeline; print("[od] FAD environment OK: tensorflow", tf.__version__, "apache-beam", apache_beam.__version__, "dask", dask.__version__)'
