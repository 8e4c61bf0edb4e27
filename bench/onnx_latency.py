"""Inference latency of an ONNX model in ONNX Runtime, timed as mmkd's `latency` times a run
(train/latency.h): random normal inputs of the model's trained shapes, 3 untimed calls, then 20
timed calls at batch 1 and 5 at batch 64; median, p10 and p90 in ms.

    python bench/onnx_latency.py MODEL.onnx --threads 1 [--batches 1,64]
Prints one JSON line per batch size.
"""
import argparse
import json
import time

import numpy as np
import onnx
import onnxruntime as ort


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", default="1,64")
    args = parser.parse_args()

    meta = {p.key: p.value for p in onnx.load(args.model, load_external_data=False).metadata_props}
    steps = dict(item.split(":") for item in meta["mmkd.trained_steps"].split(","))
    features = dict(item.split(":") for item in meta["mmkd.input_features"].split(","))

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch in (int(b) for b in args.batches.split(",")):
        feeds = {
            name: rng.standard_normal((batch, int(steps[name]), int(features[name])), dtype=np.float32)
            for name in steps
        }
        repeats = 20 if batch == 1 else 5
        for _ in range(3):
            session.run(None, feeds)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(None, feeds)
            times.append((time.perf_counter() - start) * 1000)
        p10, median, p90 = np.percentile(times, [10, 50, 90])
        print(json.dumps({"runtime": f"onnxruntime {ort.__version__}", "threads": args.threads,
                          "batch": batch, "repeats": repeats, "median_ms": round(median, 3),
                          "p10_ms": round(p10, 3), "p90_ms": round(p90, 3)}))


if __name__ == "__main__":
    main()
