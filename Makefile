# Every target does its own set-up: a fresh machine needs only python3 (3.11).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    := out

.PHONY: demo test bench-mnist setup clean

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

# MNIST 10k/10k, 784-256-10, fixed-point STOP beside its float twin (about 12 minutes).
bench-mnist: $(STAMP)
	$(PY) bench/mnist_stop.py

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
