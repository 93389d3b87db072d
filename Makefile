# Every target does its own set-up: a fresh machine needs only python3 (3.11).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    := out

.PHONY: demo tools test fuzz bench bench-mnist bench-mnist-spide bench-peers bench-device bench-executors bench-cutoff bench-recipe bench-nir bench-fleet bench-fpga setup fleet-setup clean

# constraints.txt pins the exact versions (setup.cfg keeps ranges); editing it reinstalls.
$(STAMP): setup.cfg setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

setup: $(STAMP)

# Flower (edgelearn[fleet], docs/fleet.md) needs protobuf < 7 and packaging < 26, below the pins of
# constraints.txt, so it gets a venv of its own with its own pins; the fleet tests (in .venv) start
# Flower's processes from .venv-fleet/bin. Editing constraints-fleet.txt reinstalls it.
FLEET_VENV  := .venv-fleet
FLEET_STAMP := $(FLEET_VENV)/.installed

$(FLEET_STAMP): setup.cfg setup.py pyproject.toml constraints-fleet.txt
	$(PYTHON) -m venv $(FLEET_VENV)
	$(FLEET_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLEET_VENV)/bin/python -m pip install --quiet -c constraints-fleet.txt -e '.[fleet]'
	touch $@

fleet-setup: $(FLEET_STAMP)

# The C toolchains and QEMU: host gcc (native builds), the Cortex-M and RISC-V cross
# compilers, the emulated boards; the FPGA tools (simulators, synthesis, place and route). Installed with apt when this user can (root or sudo).
TOOL_PACKAGES := gcc gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-riscv64-unknown-elf qemu-system-arm qemu-system-misc clang \
                 iverilog verilator yosys nextpnr-ice40 fpga-icestorm
TOOL_COMMANDS := gcc arm-none-eabi-gcc riscv64-unknown-elf-gcc qemu-system-arm qemu-system-riscv32 clang \
                 iverilog verilator yosys nextpnr-ice40 icepack

tools:
	@missing=0; for c in $(TOOL_COMMANDS); do command -v $$c >/dev/null || missing=1; done; \
	if [ $$missing = 0 ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TOOL_PACKAGES); \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TOOL_PACKAGES); \
	else echo "note: cannot install $(TOOL_PACKAGES) (not root, no sudo): the tests that need them" \
	    "will fail, and the demo will use the native board"; fi

# The main job: on-device STOP learning of digits on an emulated Cortex-M4 over a serial
# link: push the model, stream samples, learn on the board, measure on-device accuracy,
# pull the weights and check them bit for bit against the host reference.
demo: $(STAMP) tools
	$(PY) -m firmware_host.demo

# pytest-xdist: one worker per core (much of the suite waits on boards, simulators and Flower);
# --dist loadgroup keeps an xdist_group (the Flower deployments) in one worker.
test: $(STAMP) $(FLEET_STAMP) tools
	$(PY) -m pytest -n auto --dist loadgroup

# libFuzzer (clang, ASan + UBSan) on the blob loader, the link's frame codec and the whole firmware
# behind an authenticated link, FUZZ_SECONDS each on the corpus of fuzz/corpus; prints the inputs
# executed, fails on a finding (fuzz/run.py). .ci/run runs it after the tests.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP) tools
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS)

bench: bench-mnist bench-mnist-spide bench-peers bench-device bench-executors bench-cutoff bench-recipe bench-nir bench-fleet \
       bench-fpga

# MNIST 10k/10k, 784-256-10, fixed-point STOP beside its float twin (about 12 minutes).
bench-mnist: $(STAMP)
	$(PY) bench/twins.py --rule stop

# MNIST 10k/10k, 784-256-10, fixed-point SPIDE beside its float twin (about 10 minutes).
bench-mnist-spide: $(STAMP)
	$(PY) bench/twins.py --rule spide

# Anytime inference: MNIST 10k/10k, 784-256-10 fixed-point STOP at T = 32 trained 5 epochs, Top-K
# cutoff margins calibrated on the training split, accuracy against mean steps on the test split
# (33 s measured, 2.5 min on a busy machine). Writes bench/results/cutoff.{json,md,png}; CUTOFF_ARGS="--regulariser 0.5"
# also trains the float twin with and without the RCS regulariser (22 minutes more, measured).
bench-cutoff: $(STAMP)
	$(PY) bench/cutoff.py $(CUTOFF_ARGS)

# The default training recipe (edgelearn train, unchanged) on digits, MNIST and transformed MNIST
# beside a scikit-learn MLP of the same size on the same split. Writes bench/results/recipe.{json,md,png}.
bench-recipe: $(STAMP)
	$(PY) bench/recipe.py

# Seconds per sample of the float, fixed and c executors, interleaved in fresh processes (about
# 3 minutes). Writes bench/results/executors.{json,md}.
bench-executors: $(STAMP)
	$(PY) bench/executors.py

# Instructions per training and inference sample on the emulated Cortex-M4F and M7 (QEMU
# -icount with SysTick), the runtime checked bit-exact against the host. About 15 s.
bench-device: $(STAMP)
	$(PY) bench/device_cost.py

# The peers live in their own venv: torch 2.13.0 (the CPU wheel on these machines) first,
# then snntorch and spikingjelly constrained so torch is never upgraded.
PEERS_VENV  := bench/.venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): bench/requirements-peers.txt bench/constraints-peers.txt setup.cfg setup.py pyproject.toml
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

# snnTorch <-> edgelearn through NIR, both ways: the same spikes for the same input (about 10 s).
# snnTorch's NIR functions need nirtorch. Writes bench/results/nir_peers.{json,md}.
PEERS_NIR := $(PEERS_VENV)/.nir-installed

$(PEERS_NIR): $(PEERS_STAMP)
	$(PEERS_VENV)/bin/pip install --quiet nir==1.0.8 nirtorch==2.6
	touch $@

bench-nir: $(PEERS_NIR)
	$(PEERS_VENV)/bin/python bench/nir_peers.py

# Federated on-device learning on Flower (docs/fleet.md): 8 native boards on digits by class (20 rounds),
# iid and shifted (10), 2 QEMU boards, a run with faults; every aggregate checked bit for bit against
# the host's replay (about 28 minutes). Writes bench/results/fleet.{json,md,png}; FLEET_ARGS="--only NAME".
bench-fleet: $(STAMP) $(FLEET_STAMP) tools
	$(PY) bench/fleet.py $(FLEET_ARGS)

# The FPGA core (docs/fpga.md): the digits model synthesised, placed and routed for the iCE40 UP5K
# and synthesised for the ECP5-25F, cycles per training sample in verilator (bit-exact with the
# reference), samples/s at Fmax. Writes bench/results/fpga.{json,md}.
bench-fpga: $(STAMP) tools
	$(PY) bench/fpga.py $(FPGA_ARGS)

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(FLEET_VENV) $(OUT) build *.egg-info
