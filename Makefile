# Two entry points: `make benchmark` (the main job) and `make test`. Both create .venv on first use
# and install the pinned environment; later runs reuse it until pyproject.toml or this file changes.
# `make demo` runs the spectraldiff demo, `make bench` the speed benchmarks.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Versions known to load together (DGL 2.1.0 needs torch <= 2.2.1).
PINS   := "torch==2.2.1" "dgl==2.1.0" "numpy<2" "torchdata==0.7.1" "setuptools<70"

.PHONY: benchmark demo test bench clean-venv

# The main job: every fast recoverer on the Gaussian yardstick (known Bayes floors, printed beside the
# methods), random and fixed protocols, one model per method (shared training over all 15
# conditions), one seed; about 1 minute on 2 cores. `--data synthetic` runs the former synthetic set.
BENCHMARK_ARGS ?= --data gaussian --recoverers zero,mean,autoencoder,md2n,rohydr,gsdnet --protocol both \
                  --training shared --seeds 1111 --epochs 10 --out runs/benchmark

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<25"
	$(PY) -m pip install --quiet $(PINS) -e ".[mer,graphs,test]"
	touch $@

benchmark: $(VENV)/.installed
	$(PY) -m mer benchmark $(BENCHMARK_ARGS)

demo: $(VENV)/.installed
	$(PY) -m spectraldiff demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) -m pytest benchmarks -q --benchmark-columns=mean,stddev,rounds

clean-venv:
	rm -rf $(VENV)
