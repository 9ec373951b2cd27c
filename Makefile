# wavegen: `make demo` runs the default pipeline, `make test` runs the tests.
# Every target is idempotent and works on a fresh Debian/Ubuntu machine as root.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# CPU build of PyTorch, installed first on machines without a GPU so that the
# project's range (torch>=2.4,<3) is already met and no CUDA build is pulled in.
TORCH_CPU ?= torch==2.13.0
# basic-pitch, the transcription baseline; BASIC_PITCH=0 leaves it out.
BASIC_PITCH ?= 1
BASIC_PITCH_VERSION := basic-pitch==0.4.0
COMMA := ,
EXTRAS := dev$(if $(filter 1,$(BASIC_PITCH)),$(COMMA)basic-pitch)
# TimGM6mb renders the corpus; it, FluidR3, FluidR3Mono and csound's GM bank are the
# transcriber's training pianos (data.render.soundfonts); MuseScore General (small) is
# the piano kept for evaluation (evaluation.soundfont), never trained on. chromium
# (headless) checks the evaluation page in the tests and takes the docs' screenshots.
DEBIAN_PACKAGES := fluidsynth timgm6mb-soundfont fluid-soundfont-gm fluidr3mono-gm-soundfont \
	csound-soundfont musescore-general-soundfont-small chromium
# Runs a command with the venv first on PATH, so dvc stages' `python` is the venv's.
IN_VENV := PATH="$(BIN):$$PATH" DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false

.PHONY: setup system-packages python-packages basic-pitch demo test test-fast bench screenshot clean-venv

setup: system-packages python-packages

system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make setup: installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "make setup: rendering audio needs these system packages: $(DEBIAN_PACKAGES)"; \
		echo "  Debian/Ubuntu:  sudo apt-get install $(DEBIAN_PACKAGES)"; \
		echo "  elsewhere: FluidSynth (libfluidsynth) and a General MIDI .sf2 soundfont;"; \
		echo "  then set data.render.soundfont in params.yaml to its path."; \
		exit 1; \
	fi

python-packages: $(STAMP)
	@if [ "$(BASIC_PITCH)" = 1 ] && ! $(VENV)/bin/python -m pip show basic-pitch >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory basic-pitch; \
	fi

# basic-pitch's metadata asks for TensorFlow on Python >= 3.11, yet the ONNX model in
# its package runs on onnxruntime alone: its other dependencies come from our extra.
# librosa, which reads basic-pitch's audio, compiles its numba ufuncs when first
# imported (about 17 s on 2 cores) and caches them in the venv: done here once, as pip
# compiles the .pyc files, not by the first stage (or the first several at once).
basic-pitch: | $(VENV)/bin/python
	@echo "make setup: installing basic-pitch (ONNX runtime, no TensorFlow)"
	$(VENV)/bin/python -m pip install --quiet -e ".[dev,basic-pitch]"
	$(VENV)/bin/python -m pip install --quiet --no-deps "$(BASIC_PITCH_VERSION)"
	@echo "make setup: compiling librosa's numba functions into the venv's cache"
	$(VENV)/bin/python -c "import librosa.core.audio, librosa.util.utils"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "make setup: GPU found; pip picks a CUDA build of torch"; \
	elif ! $(VENV)/bin/python -c "import torch" >/dev/null 2>&1; then \
		echo "make setup: no GPU; installing the CPU build $(TORCH_CPU)"; \
		$(VENV)/bin/python -m pip install --quiet "$(TORCH_CPU)"; \
	fi
	$(VENV)/bin/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

demo: setup
	$(IN_VENV) dvc repro
	@echo
	@echo "Results:"
	@echo "  data/prepared/           prepared corpus (audio/, midi/, manifest.json, rejected.json)"
	@echo "  data/transcribed/        MIDI transcribed from the unlabelled and train audio"
	@echo "  models/                  trained models (self-describing checkpoints)"
	@echo "  reports/evaluate_transcriber/  transcription scores, ours vs basic-pitch, rolls/*.png"
	@echo "  data/composed/           new MIDI pieces from the Music Transformer"
	@echo "  data/synthesized/<family>/  test and composed MIDI rendered by each vocoder (WAV + PNG)"
	@echo "  reports/synthesize/      vocoders against the true audio and FluidSynth"
	@echo "  reports/*/metrics.json   metrics    (dvc metrics show)"
	@echo "  reports/*/*.png          pictures   (dvc plots show)"

# Two pytest workers: the shared tiny pipeline run and the other tests overlap on the
# 2 cores (tests/conftest.py gives each worker one thread and whole files in order).
PYTEST_WORKERS ?= 2
# The unit tests: everything but the stage, pipeline and whole-pipeline tests.
NOT_UNIT := --ignore=tests/stages --ignore=tests/pipelines --ignore=tests/integration -m "not slow"

test: setup
	$(IN_VENV) python -m pytest -n $(PYTEST_WORKERS)

# The edit-test loop: the unit tests alone (under 90 s on 2 cores).
test-fast: setup
	$(IN_VENV) python -m pytest -n $(PYTEST_WORKERS) $(NOT_UNIT)

bench: setup
	$(IN_VENV) python -m benchmarks

# The README's picture of a finished run in the Prefect UI (needs Debian's chromium).
screenshot: setup
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		{ echo "make screenshot: install the Debian package chromium"; exit 1; }
	$(IN_VENV) python -m tools.screenshot_ui --out docs/prefect-ui-run.png

clean-venv:
	rm -rf $(VENV)
