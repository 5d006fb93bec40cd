"""Export to other tools: TensorBoard event files of a recorded run, ONNX files of a model.

- :mod:`~convscope.export.tensorboard`: :func:`export_tensorboard` writes a run's
  metrics, kernel grids and projector embeddings as TensorBoard event files
  (needs ``pip install 'convscope[tensorboard]'``);
- :mod:`~convscope.export.onnx`: :func:`export_onnx` writes a model as ONNX with its
  input spec and class names in the file's metadata, checked against PyTorch with
  onnxruntime (needs ``pip install 'convscope[onnx]'``).

Neither imports TensorBoard or ONNX until it is used.
"""

from __future__ import annotations

from convscope.export.onnx import OnnxCheck, OnnxExport, check_onnx, export_onnx, read_metadata
from convscope.export.tensorboard import TensorBoardExport, export_tensorboard

__all__ = [
    "OnnxCheck",
    "OnnxExport",
    "TensorBoardExport",
    "check_onnx",
    "export_onnx",
    "export_tensorboard",
    "read_metadata",
]
