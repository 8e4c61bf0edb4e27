"""Runs: train, distill, resume, evaluate and study, as the CLI's commands do them.

Each long call releases the GIL while C++ works, reports its progress lines (per-epoch results,
the study's run list) to ``progress``, and stops at the next batch on Ctrl-C with
``KeyboardInterrupt``; the run keeps its last finished epoch's checkpoint and
:func:`resume` continues it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from . import _core

PathLike = Union[str, os.PathLike]
Config = Union[PathLike, Mapping[str, Any]]
Overrides = Union[None, Mapping[str, Any], Sequence[str]]
Progress = Union[None, bool, Callable[[str], Any]]

__all__ = ["RunResult", "StudyResult", "train", "distill", "resume", "evaluate", "study"]

logger = logging.getLogger("mmkd")


@dataclass(frozen=True)
class RunResult:
    """A finished run: its directory and its metrics.json."""

    run: Path
    metrics: Dict[str, Any]

    @property
    def accuracy(self) -> float:
        """acc7 on test."""
        return float(self.metrics["test"]["classification"]["accuracy"])

    @property
    def f1(self) -> float:
        """Weighted F1 on test."""
        return float(self.metrics["test"]["classification"]["f1_weighted"])

    @property
    def checkpoint(self) -> Path:
        return self.run / "best.pt"

    @classmethod
    def read(cls, run: PathLike) -> "RunResult":
        """The result of a finished run directory (its metrics.json)."""
        path = Path(run) / "metrics.json"
        if not path.exists():
            raise _core.Error(f"{run}: no metrics.json; the run has not finished (mmkd.resume continues it)")
        return cls(Path(run), json.loads(path.read_text()))


@dataclass(frozen=True)
class StudyResult:
    """A study's outcome: runs that did not finish, its directory and report (table1.md,
    table1.csv, report.html)."""

    failed: int
    out: Path
    report: Path

    @property
    def table(self) -> str:
        """table1.md, or "" when the study wrote no report (a dry run)."""
        path = self.report / "table1.md"
        return path.read_text() if path.exists() else ""


def _override_list(overrides: Overrides) -> List[str]:
    """{"train.epochs": 2, "data.preset": "tiny"} -> ["train.epochs=2", "data.preset=tiny"]."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        out = []
        for key, value in overrides.items():
            if isinstance(value, str):
                text = value
            else:
                text = json.dumps(value)  # true/false, numbers and lists as YAML reads them
            out.append(f"{key}={text}")
        return out
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def _on_line(progress: Progress) -> Optional[Callable[[str], Any]]:
    """None (the default): lines go to logging.getLogger("mmkd") at INFO; a callable gets each
    line; False: lines go to this process's stderr, as in the CLI."""
    if progress is None or progress is True:
        return logger.info
    if progress is False:
        return None
    if not callable(progress):
        raise _core.Error(f"progress: expected a callable, True, False or None, got {type(progress).__name__}")
    return progress


def _run(distill: bool, config: Config, run, overrides, teacher, threads, device, progress) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="mmkd-config-") as tmp:
        if isinstance(config, Mapping):
            if run is None:
                raise _core.Error("run: a config given as a dict needs run='DIR' (a file's runs are named after it)")
            config = dict(config)
            # The YAML reader resolves includes against the file's folder; a dict's are against
            # the working directory.
            includes = config.get("include")
            if includes is not None:
                listed = [includes] if isinstance(includes, str) else list(includes)
                config["include"] = [os.path.abspath(p) for p in listed]
            path = os.path.join(tmp, "config.yaml")
            with open(path, "w") as f:
                json.dump(config, f)  # JSON is YAML
            config = path
        out = _core.run(
            distill,
            os.fspath(config),
            _override_list(overrides),
            "" if run is None else os.fspath(run),
            False,
            "" if teacher is None else os.fspath(teacher),
            -1 if threads is None else int(threads),
            device or "",
            _on_line(progress),
        )
    return RunResult(Path(out["run"]), out["metrics"])


def train(
    config: Config,
    run: Optional[PathLike] = None,
    *,
    overrides: Overrides = None,
    threads: Optional[int] = None,
    device: Optional[str] = None,
    progress: Progress = None,
) -> RunResult:
    """Trains a teacher, or a student alone (``mmkd train``). ``config``: a YAML file or a dict
    of the same keys; ``run``: the run directory (default ``runs/<config stem>-seed<seed>``; it
    must not exist yet); ``overrides``: ``{"train.epochs": 2}`` or ``["train.epochs=2"]``;
    ``threads``: intra-op threads (0 = one per free core; default the config's)."""
    return _run(False, config, run, overrides, None, threads, device, progress)


def distill(
    config: Config,
    teacher: Optional[PathLike] = None,
    run: Optional[PathLike] = None,
    *,
    overrides: Overrides = None,
    threads: Optional[int] = None,
    device: Optional[str] = None,
    progress: Progress = None,
) -> RunResult:
    """Distils a video-only student from a frozen teacher (``mmkd distill``); ``teacher`` is its
    run directory or checkpoint (default: the config's ``distill.teacher``)."""
    return _run(True, config, run, overrides, teacher, threads, device, progress)


def resume(
    run: PathLike, *, threads: Optional[int] = None, device: Optional[str] = None, progress: Progress = None
) -> RunResult:
    """Continues an interrupted run from its last checkpoint, with its own config (a run
    resumed ends with the same weights as one never interrupted: same seed, one thread)."""
    out = _core.run(False, "", [], os.fspath(run), True, "", -1 if threads is None else int(threads),
                    device or "", _on_line(progress))
    return RunResult(Path(out["run"]), out["metrics"])


def evaluate(
    checkpoint: PathLike,
    *,
    data: Optional[PathLike] = None,
    split: str = "test",
    drop: Union[str, Iterable[str]] = (),
    device: str = "cpu",
) -> Dict[str, Any]:
    """Metrics of a checkpoint or run (``mmkd eval --json``): accuracy, F1 (weighted, macro),
    per-class scores, confusion; ``drop``: modalities zeroed, e.g. ``("audio", "text")``."""
    drop_text = drop if isinstance(drop, str) else ",".join(drop)
    return _core.evaluate(os.fspath(checkpoint), "" if data is None else os.fspath(data), split, drop_text, device)


def study(
    config: PathLike,
    out: Optional[PathLike] = None,
    *,
    seeds: Optional[int] = None,
    epochs: Optional[int] = None,
    extended: bool = False,
    overrides: Overrides = None,
    study_overrides: Overrides = None,
    only: Iterable[str] = (),
    jobs: int = 1,
    threads: int = 0,
    device: Optional[str] = None,
    report: Optional[PathLike] = None,
    dry_run: bool = False,
    progress: Progress = None,
) -> StudyResult:
    """Runs a study file (``mmkd study``): every row, resumable. Its runs are child processes,
    so call it before other LibTorch work in this process (its thread pool would be copied into
    them). ``overrides`` apply to every run, ``study_overrides`` to the study file."""
    config = os.fspath(config)
    if out is None:
        out = os.path.join("runs", Path(config).stem)
    study_list = _override_list(study_overrides)
    if seeds is not None:
        study_list.append(f"study.seeds={int(seeds)}")
    if extended:
        study_list.append("study.extended=true")
    run_list = _override_list(overrides)
    if epochs is not None:
        run_list.append(f"train.epochs={int(epochs)}")
    result = _core.study(
        config,
        study_list,
        run_list,
        os.fspath(out),
        "" if report is None else os.fspath(report),
        list(only),
        int(jobs),
        int(threads),
        device or "",
        dry_run,
        _on_line(progress),
    )
    return StudyResult(int(result["failed"]), Path(result["out"]), Path(result["report"]))
