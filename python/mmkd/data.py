"""CMU-MOSEI-style data: MulT / MMSA pickles (read with mmkd's safe reader, never Python's
``pickle``), the built-in synthetic presets, and the paper's 7-class label rule.

A data set is ``{split: {"vision": Tensor[N,T,F], "audio": ..., "text": ..., "labels": Tensor[N],
"events": {modality: bool Tensor[N,T]} or None, "id": [str, ...]}}`` for the splits train, valid
and test. Features are float32 with non-finite values replaced by 0, as every mmkd command reads
them.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Union

import torch

from . import _core

Split = Dict[str, Any]
Dataset = Dict[str, Split]
PathLike = Union[str, os.PathLike]

__all__ = ["load", "save", "synthesize", "presets", "preset_options", "sentiment_class"]


def load(path: PathLike) -> Dataset:
    """Reads a MulT (``labels`` [N,1,1]) or MMSA (``regression_labels``) pickle.

    Only plain containers and numpy arrays are accepted: a pickle that would run code is refused
    with :class:`mmkd.Error`, as by every mmkd command."""
    return _core.load_data(os.fspath(path))


def save(data: Dataset, path: PathLike) -> None:
    """Writes ``data`` as a MulT pickle (atomically), readable by MulT, mmkd and ``pickle``."""
    _core.save_data(data, os.fspath(path))


def synthesize(preset: str = "small", seed: int = 0, **overrides: Any) -> Dataset:
    """The synthetic data of ``mmkd data synth --preset PRESET --seed SEED``; keyword arguments
    override the preset's options, e.g. ``synthesize("tiny", n_train=200, snr_video=1.0)``."""
    return _core.synthesize(preset, seed, overrides)


def presets() -> List[str]:
    """The names of the synthetic presets (tiny, small, ...)."""
    return list(_core.synth_presets())


def preset_options(preset: str = "small") -> Dict[str, str]:
    """Every option of a preset: name -> "value — what it means"."""
    return dict(_core.synth_options(preset))


def sentiment_class(scores: torch.Tensor) -> torch.Tensor:
    """The paper's 7-class label of continuous sentiment in [-3, 3]: clip, then round half to
    even; int64 classes -3..3 of the same shape (add 3 for an index 0..6)."""
    return _core.sentiment_class(scores)
