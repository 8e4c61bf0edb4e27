"""Runs from Python: the same results as the CLI for the same seed (one thread), progress
through a callback or logging, KD terms by name, errors as mmkd.Error, Ctrl-C leaving a
resumable run, and a study."""

import json
import logging
import signal
import time

import pytest

import mmkd
from conftest import CONFIGS, TINY, run_cli, run_python


def same_results(a: dict, b: dict):
    for key in ("best_epoch", "best_val_loss", "epochs", "parameters", "model"):
        assert a[key] == b[key], key
    assert a["test"] == b["test"]


def test_train_distill_evaluate_equal_the_cli(tiny_runs, tmp_path):
    lines = []
    teacher = mmkd.train(CONFIGS / "teacher_complete.yaml", run=tmp_path / "teacher", overrides=TINY,
                         progress=lines.append)
    same_results(teacher.metrics, json.loads((tiny_runs / "teacher" / "metrics.json").read_text()))
    assert any(line.startswith("epoch   2/2") for line in lines), lines
    assert teacher.run == tmp_path / "teacher" and teacher.checkpoint.exists()

    student = mmkd.distill(CONFIGS / "table1" / "c5_edam_down.yaml", teacher=teacher.run,
                           run=tmp_path / "student", overrides=TINY, progress=False)
    same_results(student.metrics, json.loads((tiny_runs / "student" / "metrics.json").read_text()))
    assert student.accuracy == student.metrics["test"]["classification"]["accuracy"]

    ours = mmkd.evaluate(teacher.run, drop=("audio", "text"))
    cli = json.loads(run_cli("eval", "--run", str(tiny_runs / "teacher"), "--drop", "audio,text", "--json").stdout)
    assert ours["classification"] == cli["classification"]
    assert ours["loss"] == cli["loss"]
    assert ours["dropped"] == "audio,text"


def test_progress_goes_to_logging_by_default(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mmkd"):
        mmkd.train(CONFIGS / "student_5.yaml", run=tmp_path / "s", overrides={**TINY, "train.epochs": 1})
    messages = [r.getMessage() for r in caplog.records if r.name == "mmkd"]
    assert any(m.startswith("epoch   1/1") for m in messages), messages
    assert any(m.startswith("test: ") for m in messages), messages


def test_kd_terms_by_name_combined_in_a_config_dict(tiny_runs, tmp_path):
    names = {t.name for t in mmkd.kd_terms()}
    assert {"edam", "crd", "logit_kd", "minilm", "fitnet"} <= names
    config = {
        "include": [str(CONFIGS / "train" / "defaults.yaml"), str(CONFIGS / "models" / "student_5.yaml")],
        "distill": {"terms": [
            {"method": "edam", "pairs": ["V<-A"], "weight": 1.0, "temperature": 2.0},
            {"method": "logit_kd", "weight": 0.5, "temperature": 4.0},
        ]},
    }
    result = mmkd.distill(config, teacher=tiny_runs / "teacher", run=tmp_path / "combined",
                          overrides={**TINY, "train.epochs": 1}, progress=False)
    resolved = (tmp_path / "combined" / "config.yaml").read_text()
    assert "logit_kd" in resolved and "edam" in resolved
    assert result.metrics["epochs"] == 1


def test_config_errors_are_mmkd_errors(tmp_path):
    with pytest.raises(mmkd.Error, match="epohcs") as error:
        mmkd.train(CONFIGS / "student_5.yaml", run=tmp_path / "x", overrides={"train.epohcs": 1}, progress=False)
    assert isinstance(error.value, ValueError)
    with pytest.raises(mmkd.Error, match="needs run="):
        mmkd.train({"model": {"role": "student"}}, progress=False)
    with pytest.raises(mmkd.Error, match="method"):
        mmkd.distill(CONFIGS / "table1" / "c5_edam_down.yaml", teacher=tmp_path / "none", run=tmp_path / "y",
                     overrides={"distill.method": "edma"}, progress=False)
    with pytest.raises(mmkd.Error, match="no such run directory or checkpoint"):
        mmkd.evaluate(tmp_path / "missing")


INTERRUPTED_RUN = """
import mmkd, sys
overrides = {overrides!r}
try:
    mmkd.train({config!r}, run={run!r}, overrides=overrides, progress=lambda line: print(line, flush=True))
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
"""


def test_ctrl_c_stops_training_and_leaves_a_resumable_run(tmp_path):
    overrides = {**TINY, "train.epochs": 40, "data.synth.n_train": 400}
    run = tmp_path / "run"
    child = run_python(
        INTERRUPTED_RUN.format(overrides=overrides, config=str(CONFIGS / "student_5.yaml"), run=str(run)),
        tmp_path, stdout=__import__("subprocess").PIPE)
    # Wait for the first finished epoch, then Ctrl-C.
    seen = []
    for line in child.stdout:
        seen.append(line)
        if line.startswith("epoch   1/40"):
            break
    child.send_signal(signal.SIGINT)
    rest, _ = child.communicate(timeout=120)
    assert child.returncode == 3, (seen, rest)
    assert rest.strip().endswith("interrupted")
    assert (run / "last.pt").exists() and not (run / "metrics.json").exists()

    resumed = mmkd.resume(run, progress=False)
    uninterrupted = mmkd.train(CONFIGS / "student_5.yaml", run=tmp_path / "whole", overrides=overrides, progress=False)
    same_results(resumed.metrics, uninterrupted.metrics)


STUDY = """
import mmkd
result = mmkd.study({config!r}, out={out!r}, seeds=1, overrides={overrides!r}, progress=print)
print("FAILED", result.failed)
print(result.table)
"""


def test_study_from_python(tmp_path):
    # In a fresh interpreter: a study forks its runs and needs a process without LibTorch's
    # thread pool, which this one has started.
    # Two layers: demo.yaml's figure shows layers 1 and 2.
    overrides = {**{k: v for k, v in TINY.items() if k != "train.threads"}, "model.layers": 2}
    child = run_python(STUDY.format(config=str(CONFIGS / "demo.yaml"), out=str(tmp_path / "study"),
                                    overrides=overrides), tmp_path, stdout=__import__("subprocess").PIPE)
    out, _ = child.communicate(timeout=600)
    assert child.returncode == 0, out
    assert "FAILED 0" in out
    assert "student5_alone-seed0: done" in out
    assert "| network |" in out
