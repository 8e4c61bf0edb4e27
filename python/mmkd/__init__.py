"""mmkd: multimodal-to-unimodal knowledge distillation in transformers, from Python.

The C++ library does the work (``mmkd._core``); this package gives it Python names, types and
errors. Tensors cross as ``torch.Tensor`` without a copy. See docs/python.md.

    import mmkd
    data = mmkd.data.synthesize("tiny", seed=0)
    teacher = mmkd.train("configs/teacher_complete.yaml", run="runs/t",
                         overrides={"data.preset": "tiny", "train.epochs": 2})
    print(teacher.metrics["test"]["accuracy"])
"""

from pathlib import Path as _Path

import torch  # noqa: F401  (loads the LibTorch that _core links against)

from . import _core
from . import data
from ._model import Model, Prediction
from ._runs import RunResult, StudyResult, distill, evaluate, resume, study, train
from ._terms import KdTerm, kd_terms

__version__: str = _core.__version__

Error = _core.Error
Error.__doc__ = (
    "Bad input (a file, config key, option or tensor), with the message the CLI prints. "
    "A subclass of ValueError."
)
Error.__module__ = "mmkd"



def config_dir() -> _Path:
    """mmkd's configs/ (teachers, students, Table-1 rows, studies): the copy an installed
    package carries, else the source tree's."""
    bundled = _Path(__file__).parent / "configs"
    return bundled if bundled.is_dir() else _Path(_core.source_config_dir)


__all__ = [
    "Error",
    "config_dir",
    "KdTerm",
    "Model",
    "Prediction",
    "RunResult",
    "StudyResult",
    "data",
    "distill",
    "evaluate",
    "kd_terms",
    "resume",
    "study",
    "train",
]
