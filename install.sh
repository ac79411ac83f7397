#!/usr/bin/env bash
# Set up od's Python environment in .venv (or $OD_VENV) and check it.
#
#   ./install.sh            # create/update .venv, install the pinned stack, self-check
#   PYTHON=python3.11 ./install.sh
#
# Idempotent: a stamp records the hash of the files that define the environment; when they
# have not changed, the install is skipped and only the self-check runs (a few seconds).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV="${OD_VENV:-.venv}"
STAMP="$VENV/.od-install-stamp"

want_stamp() {
  cat requirements.txt requirements-nodeps.txt pyproject.toml install.sh | sha256sum | cut -d' ' -f1
}

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 10) else 1)'; then
  echo "od needs Python >= 3.10 (found: $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

# pip prints one "Location ... is ignored" warning per package for local mirrors: hide those
# lines only; pip's own exit status is kept.
pip_install() {
  "$VENV/bin/python" -m pip install --quiet "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[od] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Hash taken before installing: a requirements edit made during a long install is not stamped
# as installed.
WANT="$(want_stamp)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "[od] environment in $VENV is up to date (delete $STAMP to force a reinstall)"
else
  start=$(date +%s)
  echo "[od] installing the pinned stack into $VENV (first time: a few minutes, ~6.5 GB)"
  pip_install -r requirements.txt
  pip_install --no-deps -r requirements-nodeps.txt
  pip_install --no-deps --no-build-isolation -e .
  echo "$WANT" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
  echo "[od] install took $(( $(date +%s) - start )) s"
fi

# AudioCraft shells out to `ffmpeg` to write audio. Use the system's when there is one,
# else the static build shipped inside the imageio-ffmpeg wheel.
if ! command -v ffmpeg >/dev/null 2>&1 && [ ! -e "$VENV/bin/ffmpeg" ]; then
  ln -sf "$("$VENV/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" "$VENV/bin/ffmpeg"
  echo "[od] no system ffmpeg: linked imageio-ffmpeg's static build as $VENV/bin/ffmpeg"
fi

# FluidSynth and a General MIDI soundfont render MIDI for od.analysis.symbolic (seed 004's study)
# and its tests. System packages: installed with apt when they are missing and apt is usable
# (root), otherwise only named; od itself works without them.
have_soundfont() { ls /usr/share/sounds/sf2/*.sf2 >/dev/null 2>&1 || ls /usr/share/soundfonts/*.sf2 >/dev/null 2>&1; }
if ! command -v fluidsynth >/dev/null 2>&1 || ! have_soundfont; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[od] installing fluidsynth and fluid-soundfont-gm (MIDI rendering, apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends fluidsynth fluid-soundfont-gm >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends fluidsynth fluid-soundfont-gm >/dev/null; } \
      || echo "[od] warning: could not install fluidsynth/fluid-soundfont-gm; MIDI rendering will say what is missing" >&2
  else
    echo "[od] note: MIDI rendering (od.analysis.symbolic) needs FluidSynth and a GM soundfont: apt-get install fluidsynth fluid-soundfont-gm"
  fi
fi

# Headless Chromium renders the run report in the tests (tests/test_pipeline.py). Installed from
# Debian's packages only when it is missing and apt can be used (root); otherwise the report
# test is skipped on a developer machine and fails under CI=true, saying so.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[od] installing chromium (Debian package) for the report test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "[od] WARNING: could not install chromium; the report test will be skipped (fails under CI=true)" >&2
fi

# espeak-ng speaks the test sentence that checks od's VGGish frontend on speech
# (tests/test_fad_frontend.py). Debian package, installed like the two above; od never needs it.
if ! command -v espeak-ng >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[od] installing espeak-ng (Debian package) for the frontend test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends espeak-ng >/dev/null) \
    || echo "[od] WARNING: could not install espeak-ng; the speech frontend test will be skipped (fails under CI=true)" >&2
fi

# Self-check: fails (non-zero) when a core import is broken; warns when there is no GPU.
"$VENV/bin/python" -m od.doctor
