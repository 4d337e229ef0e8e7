"""A controller's side of `edgemtl camera ... --results udp://127.0.0.1:5600`: read each frame's JSON line and
act on the decision (here: print it). Standard library only; the schema is in docs/runtime.md#results-schema.

    python demos/results_consumer.py 5600            # listen on 127.0.0.1:5600 until Ctrl-C
    python demos/results_consumer.py 5600 --count 10 # stop after 10 lines
"""

import json
import socket
import sys

port = int(sys.argv[1])
count = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else None
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", port))
print(f"listening on udp://127.0.0.1:{port}", flush=True)
while count is None or count > 0:
    line = json.loads(receiver.recv(65535))
    assert line["schema"] in (1, 2), f"results schema {line['schema']}: this consumer reads versions 1 and 2"
    tasks, steady = line["tasks"], line["steady"]
    decisions = [  # classification labels: raw, and steadied when --smooth is on
        f"{name} {result['label']}" + (f" (steady {steady[name]['label']})" if name in steady else "")
        for name, result in tasks.items()
        if "label" in result
    ]
    decisions += [  # detected objects (version 2): class and, with --track, the object's id
        f"{name}: " + " ".join(f"{o['class']}#{o.get('track_id', '?')}" for o in result["objects"])
        for name, result in tasks.items()
        if "objects" in result
    ]
    print(f"{line['source']} frame {line['frame']} ({line['latency_ms']:.0f} ms): {', '.join(decisions)}", flush=True)
    count = None if count is None else count - 1
