"""Where ONNX Runtime spends a student's inference: its own profiler (enable_profiling), kernel
time summed by operator type over 3 calls, one thread. bench/NOTES.md section 10 quotes it.

    python bench/onnx_profile.py MODEL.onnx BATCH      # e.g. OUTDIR/student5.onnx 1
"""
import collections
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    path, batch = sys.argv[1], int(sys.argv[2])
    meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    steps = dict(item.split(":") for item in meta["mmkd.trained_steps"].split(","))
    features = dict(item.split(":") for item in meta["mmkd.input_features"].split(","))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(os.path.dirname(os.path.abspath(path)), "ort_profile")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal((batch, int(steps[name]), int(features[name])),
                                       dtype=np.float32) for name in steps}
    for _ in range(3):
        session.run(None, feeds)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    by_op = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values())
    for op, time in by_op.most_common(8):
        print(f"{op:20s} {100 * time / total:5.1f}%")


if __name__ == "__main__":
    main()
