"""mmkd.Model: forward on tensors, taps by transformer name, predictions equal to the CLI's,
weights as a dict shared without copy, checkpoints, and errors for bad tensors."""

import json

import numpy as np
import pytest
import torch

import mmkd
from conftest import CONFIGS, run_cli

STUDENT = {"role": "student", "architecture": 5, "d_model": 8, "layers": 1, "heads": 2}
TEACHER = {"role": "teacher", "architecture": "complete", "d_model": 8, "layers": 1, "heads": 2}


def inputs(model, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, t, f, generator=g) for m, (t, f) in model.input_shape.items()}


def test_student_forward_taps_and_maps():
    student = mmkd.Model.from_config(STUDENT, "tiny", seed=0).eval()
    assert student.role == "student"
    x = inputs(student)
    out = student(x["vision"], taps="all")
    assert out["logits"].shape == (3, 7)
    assert set(out["taps"]) == set(student.transformer_names)
    maps = student.attention_maps(x["vision"], transformers=["V<-A"])
    assert list(maps) == ["V<-A"]
    layers, batch, tq, tk = maps["V<-A"].shape
    assert (layers, batch) == (1, 3)
    torch.testing.assert_close(maps["V<-A"].sum(-1), torch.ones(layers, batch, tq))
    post = student.post_attention(x["vision"], transformers="V<-A")
    assert post["V<-A"].shape[-1] == 8
    with pytest.raises(mmkd.Error, match="V<-X"):
        student(x["vision"], taps=["V<-X"])


def test_gradients_flow_into_the_network_and_not_under_no_grad():
    student = mmkd.Model.from_config(STUDENT, "tiny", seed=0).train()
    x = inputs(student)["vision"].requires_grad_()
    student(x)["logits"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    weights = student.state_dict()
    assert all(p.grad is not None for p in student.parameters())
    assert weights["head.out_layer.weight"].grad.abs().sum() > 0
    with torch.no_grad():
        assert not student(x)["logits"].requires_grad


def test_state_dict_is_the_network_itself():
    student = mmkd.Model.from_config(STUDENT, "tiny", seed=0).eval()
    first, second = student.state_dict(), student.state_dict()
    assert {k: v.data_ptr() for k, v in first.items()} == {k: v.data_ptr() for k, v in second.items()}
    x = inputs(student)["vision"]
    with torch.no_grad():
        first["head.out_layer.bias"].fill_(0)
        first["head.out_layer.weight"].zero_()
        logits = student(x)["logits"]
    assert torch.count_nonzero(logits) == 0
    assert student.parameter_count == sum(p.numel() for p in student.parameters())


def test_state_dict_round_trip_and_checkpoint(tmp_path):
    a = mmkd.Model.from_config(STUDENT, "tiny", seed=1).eval()
    b = mmkd.Model.from_config(STUDENT, "tiny", seed=2).eval()
    x = inputs(a)["vision"]
    assert not torch.equal(a(x)["logits"], b(x)["logits"])
    b.load_state_dict({k: v.clone() for k, v in a.state_dict().items()})
    assert torch.equal(a(x)["logits"], b(x)["logits"])
    a.save(tmp_path / "student.pt")
    c = mmkd.Model.load(tmp_path / "student.pt")
    assert torch.equal(a(x)["logits"], c(x)["logits"])
    assert c.config["model"]["d_model"] == 8


def test_load_state_dict_refuses_wrong_names_and_shapes():
    model = mmkd.Model.from_config(STUDENT, "tiny", seed=0)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    weights["head.out_layer.weight"] = torch.zeros(3, 3)
    with pytest.raises(mmkd.Error, match=r"'head.out_layer.weight' has shape \[3, 3\]"):
        model.load_state_dict(weights)
    del weights["head.out_layer.weight"]
    with pytest.raises(mmkd.Error, match="'head.out_layer.weight' is missing"):
        model.load_state_dict(weights)
    weights["bogus"] = torch.zeros(1)
    with pytest.raises(mmkd.Error, match="'bogus' is not a parameter or buffer"):
        model.load_state_dict(weights)


def test_bad_tensors_are_clear_errors():
    teacher = mmkd.Model.from_config(TEACHER, "tiny", seed=0)
    x = inputs(teacher)
    with pytest.raises(mmkd.Error, match=r"audio: expected shape \[batch, 16, 74\]"):
        teacher(x["vision"], x["audio"][:, :, :5], x["text"])
    with pytest.raises(mmkd.Error, match="vision: expected float32, got Double"):
        teacher(x["vision"].double(), x["audio"], x["text"])
    with pytest.raises(mmkd.Error, match="text: batch of 2 samples, but vision has 3"):
        teacher(x["vision"], x["audio"], x["text"][:2])
    with pytest.raises(mmkd.Error, match="audio: a teacher needs every modality"):
        teacher(x["vision"])
    with pytest.raises(mmkd.Error, match="vision: expected a torch.Tensor"):
        teacher([1, 2, 3], x["audio"], x["text"])
    with pytest.raises(mmkd.Error, match="teacher, which needs audio and text"):
        teacher.predict(x["vision"])
    with pytest.raises(mmkd.Error, match="architecture"):
        mmkd.Model.from_config({"role": "student", "architecture": 9}, "tiny")
    with pytest.raises(mmkd.Error, match="d_modle"):
        mmkd.Model.from_config({"role": "student", "architecture": 5, "d_modle": 8}, "tiny")


def test_predict_equals_the_cli(tiny_runs, tmp_path):
    student = mmkd.Model.load(tiny_runs / "student")
    clips = inputs(student, batch=4, seed=5)["vision"]
    np.save(tmp_path / "clips.npy", clips.numpy())
    lines = run_cli("predict", "--checkpoint", str(tiny_runs / "student" / "best.pt"), "--input",
                    str(tmp_path / "clips.npy")).stdout.splitlines()
    cli = [json.loads(line) for line in lines]
    ours = student.predict(clips)
    assert ours.classes.tolist() == [c["class"] for c in cli]
    np.testing.assert_allclose(ours.probabilities.numpy(), np.array([c["probabilities"] for c in cli]), rtol=1e-6)


def test_from_config_file_and_parameter_table():
    model = mmkd.Model.from_config(CONFIGS / "student_5.yaml", "tiny")
    assert model.role == "student"
    assert model.parameter_count == sum(n for _, n in model.parameter_table)
    assert "student 5" in repr(model)
