"""mmkd.Model: a teacher or a video-only student, on torch tensors."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from . import _core

PathLike = Union[str, os.PathLike]
InputShape = Union[str, Mapping[str, Sequence[int]]]

__all__ = ["Model", "Prediction"]


@dataclass(frozen=True)
class Prediction:
    """A student's predictions for N clips."""

    classes: torch.Tensor  #: int64 [N], the predicted class -3..3
    probabilities: Optional[torch.Tensor]  #: float32 [N, 7] (None for a regression student)
    outputs: torch.Tensor  #: float32 [N, 7] logits, or [N, 1] sentiment in regression mode


class Model:
    """A network of mmkd: built from a model config, or loaded from a checkpoint or run.

    Calling it runs the forward pass on ``[batch, steps, features]`` float32 tensors (a student
    reads ``vision`` only) and returns ``{"logits", "penultimate", "taps"}``. Gradients flow as
    in any torch module unless ``torch.no_grad()`` is active; :meth:`eval` turns dropout off."""

    def __init__(self, core: "_core.Model") -> None:
        self._core = core

    # construction -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: PathLike) -> "Model":
        """A checkpoint file, or a run directory (its best.pt), in eval mode on the CPU."""
        return cls(_core.Model.load(os.fspath(path)))

    @classmethod
    def from_config(
        cls, config: Union[PathLike, Mapping[str, Any]], input_shape: InputShape = "tiny", seed: int = 0
    ) -> "Model":
        """A freshly initialised network (seeded) from the ``model:`` mapping of a config: a dict
        such as ``{"role": "student", "architecture": 5, "d_model": 32}``, or a YAML file whose
        ``model:`` key is used. ``input_shape``: ``"tiny"``, ``"mosei"``, ``"Tv,Ta,Tl"`` or
        ``{"vision": (T, F), "audio": (T, F), "text": (T, F)}``."""
        if isinstance(config, (str, os.PathLike)):
            model_json = _core.model_config_of_file(os.fspath(config))
        else:
            model_json = json.dumps(dict(config))
        return cls(_core.Model.build(model_json, input_shape, seed))

    def save(self, path: PathLike) -> None:
        """Writes a checkpoint (atomically) that every mmkd command and :meth:`load` read."""
        self._core.save(os.fspath(path))

    # inference -----------------------------------------------------------------------------
    def __call__(
        self,
        vision: torch.Tensor,
        audio: Optional[torch.Tensor] = None,
        text: Optional[torch.Tensor] = None,
        *,
        taps: Union[None, str, Iterable[str]] = None,
        what: Iterable[str] = ("map", "post_attention"),
    ) -> Dict[str, Any]:
        """The forward pass. ``taps``: transformer names (``"V<-A"``, ``"mem:V"``) or ``"all"``;
        each tapped transformer gives one dict per layer with the ``what`` tensors: ``map``
        (head-averaged attention [B,Tq,Tk]), ``post_attention`` ([B,Tq,d]), ``logits``
        ([B,H,Tq,Tk]) and ``output`` (the layer's output)."""
        if isinstance(taps, str):
            taps = [taps]
        return self._core.forward(vision, audio, text, None if taps is None else list(taps), list(what))

    forward = __call__

    def attention_maps(
        self,
        vision: torch.Tensor,
        audio: Optional[torch.Tensor] = None,
        text: Optional[torch.Tensor] = None,
        transformers: Union[str, Iterable[str]] = "all",
    ) -> Dict[str, torch.Tensor]:
        """Head-averaged attention maps per transformer, stacked over layers: [layers, B, Tq, Tk]."""
        return self._stacked("map", vision, audio, text, transformers)

    def post_attention(
        self,
        vision: torch.Tensor,
        audio: Optional[torch.Tensor] = None,
        text: Optional[torch.Tensor] = None,
        transformers: Union[str, Iterable[str]] = "all",
    ) -> Dict[str, torch.Tensor]:
        """Post-attention outputs per transformer, stacked over layers: [layers, B, Tq, d]."""
        return self._stacked("post_attention", vision, audio, text, transformers)

    def _stacked(self, kind: str, vision, audio, text, transformers) -> Dict[str, torch.Tensor]:
        out = self(vision, audio, text, taps=transformers, what=(kind,))
        return {name: torch.stack([layer[kind] for layer in layers]) for name, layers in out["taps"].items()}

    def predict(self, vision: torch.Tensor) -> Prediction:
        """A video-only student's classes and probabilities for clips [N, T, F] (as ``mmkd
        predict``), without gradients."""
        out = self._core.predict(vision)
        return Prediction(classes=out["classes"], probabilities=out["probabilities"], outputs=out["outputs"])

    # modes and weights --------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Model":
        """Training mode (dropout on); returns self, as torch.nn.Module.train."""
        self._core.set_training(mode)
        return self

    def eval(self) -> "Model":
        return self.train(False)

    @property
    def training(self) -> bool:
        return self._core.training

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Every parameter and buffer under the names of mmkd's checkpoints (docs/python.md).
        The tensors are the network's own, not copies: change one in place and the network
        changes."""
        return dict(self._core.state_dict())

    def load_state_dict(self, values: Mapping[str, torch.Tensor]) -> None:
        """Copies ``values`` into the network; every name must match, with its shape."""
        self._core.load_state_dict(dict(values))

    def parameters(self) -> List[torch.Tensor]:
        return [t for t in self.state_dict().values() if t.requires_grad]

    # description --------------------------------------------------------------------------
    @property
    def role(self) -> str:
        """"teacher" or "student"."""
        return self._core.role

    @property
    def config(self) -> Dict[str, Any]:
        """The configuration the network was built or trained with (a run's whole config)."""
        return self._core.config

    @property
    def input_shape(self) -> Dict[str, Tuple[int, int]]:
        """``{modality: (steps, features)}`` the network was built for."""
        return dict(self._core.input_shape)

    @property
    def transformer_names(self) -> List[str]:
        """Every transformer's name in the paper's notation, in execution order."""
        return list(self._core.transformer_names)

    @property
    def parameter_count(self) -> int:
        return self._core.parameter_count

    @property
    def parameter_table(self) -> List[Tuple[str, int]]:
        """(module, parameters) per top-level module."""
        return list(self._core.parameter_table)

    def __repr__(self) -> str:
        return f"mmkd.Model({self._core.description}, {self.parameter_count} parameters)"
