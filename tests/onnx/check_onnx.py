"""Checks ONNX models written by mmkd (tests/onnx/model_export_test.cpp): onnx.checker, the
metadata, the graph's inputs and outputs, and ONNX Runtime's outputs against mmkd's logits.

    python tests/onnx/check_onnx.py DIR     # DIR/manifest.json lists models and cases

Prints one line per check and exits 1 if any failed.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOLERANCE = 1e-4


def read(directory, entry):
    data = np.fromfile(os.path.join(directory, entry["file"]), dtype="<f4")
    return data.reshape(entry["shape"])


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def check_model(directory, spec, report, worst):
    path = os.path.join(directory, spec["file"])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    with open(os.path.join(directory, spec["config_file"]), "rb") as f:
        expected = dict(spec["metadata"], **{"mmkd.config_sha256": hashlib.sha256(f.read()).hexdigest()})
    for key, value in expected.items():
        report(meta.get(key) == value, f"{spec['name']}: metadata {key} = {meta.get(key)!r}, expected {value!r}")

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    want_outputs = ["logits", "probabilities"] if spec["classification"] else ["logits"]
    report(inputs == spec["inputs"], f"{spec['name']}: inputs {inputs}, expected {spec['inputs']}")
    report(outputs == want_outputs, f"{spec['name']}: outputs {outputs}, expected {want_outputs}")

    for case in spec["cases"]:
        feeds = {name: read(directory, entry) for name, entry in case["inputs"].items()}
        label = f"{spec['name']}: {case['label']}"
        if case.get("expect_error"):
            try:
                session.run(None, feeds)
                report(False, f"{label}: ran, expected ONNX Runtime to refuse the shape")
            except Exception as e:  # ORT raises its own exception types
                report(True, f"{label}: refused ({type(e).__name__})")
            continue
        results = session.run(None, feeds)
        reference = read(directory, case["logits"])
        logits = results[0]
        same_shape = logits.shape == reference.shape
        diff = float(np.abs(logits - reference).max()) if same_shape else float("inf")
        worst.append((diff, label))
        report(same_shape and np.isfinite(logits).all() and diff <= TOLERANCE,
               f"{label}: logits {list(logits.shape)}, max |ORT - mmkd| {diff:.2e}")
        if spec["classification"]:
            pdiff = float(np.abs(results[1] - softmax(reference.astype(np.float64))).max())
            report(pdiff <= TOLERANCE, f"{label}: probabilities, max |ORT - softmax(mmkd)| {pdiff:.2e}")


def main():
    directory = sys.argv[1]
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    failures = 0
    worst = []

    def report(ok, text):
        nonlocal failures
        failures += 0 if ok else 1
        print(("ok   " if ok else "FAIL ") + text)

    for spec in manifest["models"]:
        try:
            check_model(directory, spec, report, worst)
        except Exception as e:
            report(False, f"{spec['name']}: {type(e).__name__}: {e}")
    if worst:
        diff, label = max(worst)
        print(f"largest |ORT - mmkd| over {len(worst)} cases: {diff:.2e} ({label})")
    print(f"{failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
