"""Run an exported edgemtl model on any source and save an annotated video: the runtime API, top to bottom.

    python demos/overlay_video.py runs/demo/model.onnx runs/demo/drive.mp4 overlay.mp4

Needs only numpy, onnxruntime and OpenCV (no PyTorch).
"""

import sys
from pathlib import Path

from edgemtl.runtime import Engine, render_overlay
from edgemtl.runtime.sinks import VideoFileSink
from edgemtl.runtime.sources import open_source

model, source_uri, output = sys.argv[1], sys.argv[2], Path(sys.argv[3])

engine = Engine(model, device="auto")
print(f"{model}: tasks {[t.name for t in engine.tasks]} on {engine.providers[0]}")
engine.warmup()

with open_source(source_uri) as source, VideoFileSink(output, fps=source.fps or 30.0) as sink:
    for frame in source:
        prediction = engine.predict(frame.image)
        sink.write(render_overlay(frame.image, prediction), frame.name)
        if frame.index % 50 == 0:
            print(frame.index, {name: result.to_dict() for name, result in prediction.items() if name == "scene"})

print(f"wrote {sink.frames} frames to {output}")
