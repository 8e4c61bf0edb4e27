"""mmkd.data: the safe reader, the writer, the synthetic presets and the label rule, checked
against the CLI on the same files and against Python's own pickle and numpy."""

import pickle
import re

import numpy as np
import pytest
import torch

import mmkd
from conftest import FIXTURES, run_cli

MODALITIES = ("vision", "audio", "text")


def test_load_matches_python_pickle_and_numpy():
    data = mmkd.data.load(FIXTURES / "mult_p4.pkl")
    with open(FIXTURES / "mult_p4.pkl", "rb") as f:  # a trusted fixture: Python's own reader
        reference = pickle.load(f)
    assert set(data) == {"train", "valid", "test"}
    for split, ref in reference.items():
        for m in MODALITIES:
            want = np.nan_to_num(np.asarray(ref[m], dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
            got = data[split][m]
            assert got.dtype == torch.float32
            np.testing.assert_array_equal(got.numpy(), want)
        np.testing.assert_array_equal(data[split]["labels"].numpy(), np.asarray(ref["labels"], np.float32).reshape(-1))
        assert data[split]["id"] == [str(i) for i in np.asarray(ref["id"]).reshape(-1)]


def test_load_agrees_with_cli_inspect():
    path = FIXTURES / "mult_p4.pkl"
    data = mmkd.data.load(path)
    report = run_cli("data", "inspect", str(path)).stdout
    for split in ("train", "valid", "test"):
        for m in MODALITIES:
            shape = ",".join(str(s) for s in data[split][m].shape)
            assert re.search(rf"{m}\s+\[{shape}\]", report), (split, m, report)
    # The label line of the train split: counts of classes -3..3 by the 7-class rule.
    train_line = report.split("train:")[1].split("valid:")[0]
    classes = mmkd.data.sentiment_class(data["train"]["labels"])
    for c in range(-3, 4):
        n = int((classes == c).sum())
        label = f"+{c}" if c > 0 else str(c)
        assert f" {label}:{n} (" in train_line, (c, n, train_line)


def test_synthesize_equals_cli_data_synth(tmp_path):
    path = tmp_path / "tiny.pkl"
    run_cli("data", "synth", "--preset", "tiny", "--seed", "3", "--set", "n_train=40", "--out", str(path))
    from_cli = mmkd.data.load(path)
    here = mmkd.data.synthesize("tiny", seed=3, n_train=40)
    for split in ("train", "valid", "test"):
        for key in (*MODALITIES, "labels"):
            assert torch.equal(here[split][key], from_cli[split][key]), (split, key)
        for m in MODALITIES:
            assert torch.equal(here[split]["events"][m], from_cli[split]["events"][m])
    assert here["train"]["labels"].shape == (40,)


def test_save_then_load_round_trips_and_cli_reads_it(tmp_path):
    data = mmkd.data.synthesize("tiny", seed=1, n_train=12, n_valid=4, n_test=5)
    data["test"]["id"] = [f"clip{i}" for i in range(5)]
    path = tmp_path / "out.pkl"
    mmkd.data.save(data, path)
    back = mmkd.data.load(path)
    for split in data:
        for key in (*MODALITIES, "labels"):
            assert torch.equal(back[split][key], data[split][key])
    assert back["test"]["id"] == data["test"]["id"]
    assert "test: 5 samples, ids, events" in run_cli("data", "inspect", str(path)).stdout
    with open(path, "rb") as f:  # and Python's pickle reads what mmkd wrote
        plain = pickle.load(f)
    np.testing.assert_array_equal(plain["train"]["vision"], data["train"]["vision"].numpy())


def test_save_refuses_bad_tensors_with_their_place(tmp_path):
    data = mmkd.data.synthesize("tiny", seed=0, n_train=8)
    data["valid"]["audio"] = data["valid"]["audio"][:, :, 0]
    with pytest.raises(mmkd.Error, match=r"data\['valid'\]\['audio'\]: expected a tensor of rank 3"):
        mmkd.data.save(data, tmp_path / "x.pkl")
    data = mmkd.data.synthesize("tiny", seed=0, n_train=8)
    data["train"]["text"] = data["train"]["text"].numpy()
    with pytest.raises(mmkd.Error, match=r"data\['train'\]\['text'\]: expected a torch.Tensor, got ndarray"):
        mmkd.data.save(data, tmp_path / "x.pkl")
    data = mmkd.data.synthesize("tiny", seed=0, n_train=8)
    del data["test"]
    with pytest.raises(mmkd.Error, match="'test' is missing"):
        mmkd.data.save(data, tmp_path / "x.pkl")
    assert not (tmp_path / "x.pkl").exists()


@pytest.mark.parametrize("name", ["malicious_p2.pkl", "malicious_p4.pkl"])
def test_malicious_pickles_are_refused(name):
    with pytest.raises(mmkd.Error) as error:
        mmkd.data.load(FIXTURES / name)
    assert name in str(error.value)
    assert isinstance(error.value, ValueError)


def test_unknown_synth_option_and_preset_are_errors():
    with pytest.raises(mmkd.Error, match="n_trian"):
        mmkd.data.synthesize("tiny", n_trian=10)
    with pytest.raises(mmkd.Error, match="huge"):
        mmkd.data.synthesize("huge")
    assert {"tiny", "small"} <= set(mmkd.data.presets())
    assert "n_train" in mmkd.data.preset_options("tiny")


def test_sentiment_class_is_clip_and_round_half_even():
    scores = torch.tensor([-3.7, -2.5, -0.5, 0.5, 1.5, 2.5, 2.49, 3.2, 0.0])
    want = np.round(np.clip(scores.numpy().astype(np.float64), -3, 3)).astype(np.int64)  # numpy: half to even
    assert mmkd.data.sentiment_class(scores).tolist() == want.tolist()
    with pytest.raises(mmkd.Error):
        mmkd.data.sentiment_class(torch.tensor([float("nan")]))


def test_tensors_cross_without_copy():
    data = mmkd.data.synthesize("tiny", seed=0, n_train=8)
    x = data["train"]["vision"]
    assert mmkd._core.data_ptr(x) == x.data_ptr()
    view = x[1:]
    assert mmkd._core.data_ptr(view) == view.data_ptr()
