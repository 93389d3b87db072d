# Every target does its own set-up: a fresh machine needs only python3 (3.11).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    := out

.PHONY: demo test bench bench-mnist bench-mnist-spide bench-peers bench-device setup clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(STAMP)

# The main job. Until the board issues land: on-line STOP learning of digits in the
# fixed-point runtime (the device's arithmetic), with its float twin beside it.
demo: $(STAMP)
	mkdir -p $(OUT)
	$(VENV)/bin/edgelearn info models/digits-stop.json
	$(VENV)/bin/edgelearn train --data digits --model models/digits-stop.json --learner stop \
	    --precision fixed -o $(OUT)/digits-stop.elm --plot $(OUT)/digits-stop.png
	$(VENV)/bin/edgelearn eval $(OUT)/digits-stop.elm --data digits
	@echo "trained model: $(OUT)/digits-stop.elm, accuracy curves: $(OUT)/digits-stop.png"

test: $(STAMP)
	$(PY) -m pytest

bench: bench-mnist bench-mnist-spide bench-peers bench-device

# MNIST 10k/10k, 784-256-10, fixed-point STOP beside its float twin (about 12 minutes).
bench-mnist: $(STAMP)
	$(PY) bench/twins.py --rule stop

# MNIST 10k/10k, 784-256-10, fixed-point SPIDE beside its float twin (about 10 minutes).
bench-mnist-spide: $(STAMP)
	$(PY) bench/twins.py --rule spide

# Instructions per training and inference sample on the emulated Cortex-M4F and M7 (QEMU
# -icount with SysTick), the runtime checked bit-exact against the host. About 15 s.
bench-device: $(STAMP)
	$(PY) bench/device_cost.py

# The peers live in their own venv: torch 2.13.0 (the CPU wheel on these machines) first,
# then snntorch and spikingjelly constrained so torch is never upgraded.
PEERS_VENV  := bench/.venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): bench/requirements-peers.txt bench/constraints-peers.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet torch==2.13.0
	$(PEERS_VENV)/bin/pip install --quiet -c bench/constraints-peers.txt -r bench/requirements-peers.txt
	$(PEERS_VENV)/bin/pip install --quiet -c bench/constraints-peers.txt -e .
	touch $@

# edgelearn beside snnTorch and SpikingJelly (BPTT, OTTT, SLTT) in one process: time,
# memory and accuracy (about 6 minutes on 2 cores; PEERS_ARGS=--quick for about 1.5).
# Writes bench/results/peers.{json,md,png}.
bench-peers: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python bench/peers.py $(PEERS_ARGS)

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(OUT) build *.egg-info
