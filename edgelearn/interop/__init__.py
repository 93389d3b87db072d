"""Models in and out of edgelearn (docs/interop.md):

- ONNX import: a ReLU network (Gemm / MatMul, Conv, AveragePool, MaxPool, Relu, Flatten)
  converted ANN -> SNN with data-based threshold balancing (``import_onnx``; ``onnx_import``),
  its float accuracy from onnxruntime (``ann_accuracy``);
- ONNX export: the float twin's inference unrolled over T, dense, conv2d and pooling layers as
  MatMul, Conv, AveragePool and MaxPool (``export_onnx``; ``onnx_export``);
- NIR read and write (``write_nir``, ``read_nir``, ``to_nir``, ``from_nir``; ``nir_io``).

``onnx``, ``onnxruntime`` and ``nir`` are imported when a function needs them, so importing
this package costs nothing. Every refusal is an ``edgelearn.errors.ModelError`` naming the
file, node or layer."""
from .nir_io import DEFAULT_DT, NirImport, from_nir, read_nir, to_nir, write_nir
from .onnx_export import export_onnx, onnx_scores, to_onnx
from .onnx_graph import OnnxNet, read_onnx
from .onnx_import import OnnxImport, ann_accuracy, ann_scores, import_onnx

__all__ = ["DEFAULT_DT", "NirImport", "from_nir", "read_nir", "to_nir", "write_nir", "export_onnx", "onnx_scores",
           "to_onnx", "OnnxNet", "read_onnx", "OnnxImport", "ann_accuracy", "ann_scores",
           "import_onnx"]
