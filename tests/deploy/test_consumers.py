"""The exported file in a consumer that is not ONNX Runtime: OpenCV's DNN module runs it as it is, and
gives ONNX Runtime's results (the graph carries its own pre- and postprocessing)."""

from __future__ import annotations

from tests.deploy.kit import opencv_dnn_matches_onnxruntime


def test_opencv_dnn_runs_the_preset_export(exported_model, tiny_data):
    opencv_dnn_matches_onnxruntime(exported_model, tiny_data.images[:2])
