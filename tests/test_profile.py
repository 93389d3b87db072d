"""The memory profiler: its arena is the C runtime's, independent of T; BPTT grows with T."""
import json

import pytest

from pathlib import Path

from edgelearn import native
from edgelearn import profile as pf
from edgelearn.model import Learning, Neuron, init_params, mlp
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model

ROOT = Path(__file__).resolve().parents[1]

REQUIRED_BOARDS = {"stm32f746", "stm32l476", "nrf52840", "rp2040", "esp32c3", "mps2-an386", "mps2-an500",
                   "ice40up5k"}


@pytest.fixture(scope="module")
def mnist_model():
    return init_params(mlp("mnist-784-256-10", [784, 256, 10]))


def test_catalogue_lists_the_boards_with_sources():
    cat = pf.catalogue()
    assert REQUIRED_BOARDS <= set(cat)
    for name, info in cat.items():
        for key in ("core", "clock_hz", "fpu", "sram", "flash", "source"):
            assert info[key], (name, key)


NETS = [([784, 256, 10], "lif", "step"), ([20, 7, 5, 3], "li", "sample"), ([9, 4], "if", "step")]


# spide needs an 'li' readout, so it pairs with that net only; tests/test_native_spide.py checks its arena more
@pytest.mark.parametrize("sizes,readout,update,learner",
                         [(*net, learner) for net in NETS for learner in pf.LEARNERS
                          if learner != "spide" or net[1] == "li"])
def test_profiled_arena_equals_what_the_c_runtime_reserves(sizes, readout, update, learner):
    model = init_params(mlp("p", sizes, readout=Neuron(readout), learning=Learning(update=update)))
    m = pf.with_learner(model, learner)
    blob = to_blob(m)
    assert pf.arena_plan(m) == native.plan(blob)
    assert pf.arena_plan(m, weight_grad=True) == native.plan(blob, weight_grad=True)
    assert pf.arena_plan(m)["total"] == native.arena_required(blob)


def test_stop_arena_is_independent_of_T_and_bptt_grows_linearly(mnist_model):
    runs = {T: pf.profile(mnist_model, "mps2-an386", "stop", T, measure_code=False) for T in (8, 16, 256)}
    assert runs[8]["arena"] == runs[256]["arena"] == native.arena_required(to_blob(pf.with_learner(mnist_model, "stop", 256)))
    assert runs[8]["total_ram"] == runs[256]["total_ram"]
    slope = runs[16]["total_ram_bptt"] - runs[8]["total_ram_bptt"]
    assert slope == 8 * (5 * (256 + 10) + 784)
    assert runs[256]["total_ram_bptt"] - runs[8]["total_ram_bptt"] == slope * (256 - 8) // 8


def test_profile_measures_code_and_judges_the_budget(mnist_model, tmp_path):
    small = pf.profile(init_params(mlp("d", [64, 32, 10])), "stm32l476", "stop", 8)
    assert small["fits"] and small["code_measured"] and small["flash"]["code"] > 1000
    assert small["ram"]["stack (estimate)"] > 0 and small["ram"]["runtime context"] > 0
    big = pf.profile(mnist_model, "stm32l476", "stop", 8)
    assert not big["fits"]                        # 406 KB of int16 weights in 128 KB of SRAM
    assert pf.profile(mnist_model, "mps2-an386", "stop", 8)["fits"]
    json.dumps(big)
    assert "DOES NOT FIT" in pf.format_table(big)
    pf.plot(big, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_fpga_target_profiles_without_a_toolchain(mnist_model):
    p = pf.profile(init_params(mlp("d", [64, 32, 10])), "ice40up5k", "readout", 8)
    assert not p["code_measured"] and p["arena"] > 0


# -- the command line ------------------------------------------------------------------------------
def run_cli(capsys, *argv):
    from edgelearn.cli import main
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_profile_cli_exit_status_says_whether_it_fits(capsys, tmp_path):
    mnist = str(ROOT / "models" / "mnist-stop.json")
    # its 407,848-byte blob needs model areas above the protocol firmware's 128K (tests/test_profile_firmware.py)
    rc, out, err = run_cli(capsys, "profile", mnist, "--target", "mps2-an386", "--T", "256", "--model-area", "512K")
    assert rc == 0, err
    arena = native.arena_required(to_blob(pf.with_learner(load_model(mnist), "stop", 256)))
    assert "stop: fits" in out and f"arena (what the C runtime reserves): {arena:,} bytes" in out
    # 400 KB of int16 weights do not fit a 128 KB STM32L476: non-zero exit, the table still printed
    plot = tmp_path / "mem.png"
    rc, out, err = run_cli(capsys, "profile", mnist, "--target", "stm32l476", "--json", "--plot", str(plot))
    report = json.loads(out)
    assert rc == 1 and report["fits"] is False and report["total_ram"] > report["sram"] == 131072
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compile_cli_writes_the_config_blob_and_objects(capsys, tmp_path):
    rc, out, err = run_cli(capsys, "compile", str(ROOT / "models" / "digits-stop.json"), "--target", "mps2-an386",
                           "-o", str(tmp_path))
    assert rc == 0, err
    config = (tmp_path / "edgelearn_config.h").read_text()
    blob = (tmp_path / "model.elm").read_bytes()
    assert f"#define EDGELEARN_MODEL_BYTES {len(blob)}u" in config
    assert "el_stop.o" in out and "text" in out


@pytest.mark.parametrize("argv,needle", [
    (["profile", "MODEL", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["compile", "MODEL", "--target", "nosuch"], "unknown target 'nosuch'"),
    # an FPGA target compiles to Verilog (tests/test_hdl_synth.py); a model too big for it is refused
    (["compile", "MNIST", "--target", "ice40up5k"], "does not fit ice40up5k"),
    (["profile", "GARBAGE", "--target", "mps2-an386"], "not a model file"),
    (["profile", "MODEL", "--target", "mps2-an386", "--plot", "mem.txt"], "unknown plot file suffix"),
    # a STOP model (lif readout) is no SPIDE model: the C loader would refuse its blob
    (["profile", "MODEL", "--target", "mps2-an386", "--learner", "spide"], "'li' readout"),
])
def test_profile_and_compile_refuse_bad_input(capsys, tmp_path, argv, needle):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01 not a model")
    subst = {"MODEL": str(ROOT / "models" / "digits-stop.json"), "MNIST": str(ROOT / "models" / "mnist-stop.json"),
             "GARBAGE": str(garbage),
             "mem.txt": str(tmp_path / "mem.txt")}
    rc, out, err = run_cli(capsys, *[subst.get(a, a) for a in argv])
    assert rc == 2 and needle in err and "Traceback" not in err


def test_lenet_on_the_f746_lists_its_conv_buffers_flat_in_T(capsys):
    """The conv issue's check: LeNet-5's STOP buffers on the STM32F746 (the input trace per input
    position and channel, the errors a conv layer passes down) do not grow with T; it fits."""
    lenet = load_model(ROOT / "models" / "lenet5-mnist-stop.json")
    runs = {T: pf.profile(lenet, "stm32f746", "stop", T, measure_code=False) for T in (8, 256)}
    assert runs[8]["arena_buffers"] == runs[256]["arena_buffers"] and runs[8]["total_ram"] == runs[256]["total_ram"]
    buffers = runs[8]["arena_buffers"]
    fan_in = 1 * 28 * 28 + 6 * 12 * 12 + 16 * 4 * 4 + 120 + 84            # the input positions of every layer
    assert buffers["input_trace"] == 4 * fan_in and buffers["error_backprop"] > 0
    assert runs[8]["arena"] == native.arena_required(to_blob(pf.with_learner(lenet, "stop", 8)))
    assert runs[8]["fits"] and runs[256]["total_ram_bptt"] > runs[8]["total_ram_bptt"]
    assert run_cli(capsys, "profile", str(ROOT / "models" / "lenet5-mnist-stop.json"), "--target", "stm32f746",
                   "--T", "256")[0] == 0
