"""The FPGA target: Verilog that learns on chip, bit-exact with the Python reference
(docs/fpga.md). The RTL lives in targets/hdl (one module per op of the contract, the datapath,
the core); this package generates a model's top level and memory images (``generate``), runs
it in iverilog or verilator (``sim``) and through yosys and nextpnr (``synth``)."""
from ..resources import TARGETS

HDL_DIR = TARGETS / "hdl"
