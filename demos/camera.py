"""A live camera (or stream, or file) through an exported model to a window or a file: the runtime API, top to bottom.

    python demos/camera.py runs/demo/model.onnx 0                   # camera 0 in a window (q or Esc stops)
    python demos/camera.py runs/demo/model.onnx rtsp://cam/stream out.mp4
    python demos/camera.py runs/demo/model.onnx runs/demo/drive.mp4 none

Needs only numpy, onnxruntime and OpenCV (no PyTorch). Ctrl-C stops and still finalizes the video.
"""

import sys

from edgemtl.runtime import Engine, open_output, open_source, run_pipeline

model, source_uri = sys.argv[1], sys.argv[2]
output = sys.argv[3] if len(sys.argv) > 3 else "display"

engine = Engine(model, device="auto")  # CUDA when it can, else the CPU (said once)
with open_source(source_uri) as source, open_output(output, fps=source.fps) as sink:
    print(f"{source_uri}: {source.size} at {source.fps} FPS, live {source.live}; {engine.describe()}")
    stats = run_pipeline(engine, source, sink, report=print)  # a status line every 5 s

print(stats.describe())
