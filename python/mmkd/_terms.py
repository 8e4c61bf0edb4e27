"""The KD-term registry: every distillation loss mmkd knows, by the name a config uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from . import _core

__all__ = ["KdTerm", "kd_terms"]


@dataclass(frozen=True)
class KdTerm:
    name: str  #: what ``method:`` says in ``distill.terms``
    summary: str  #: one line
    keys: Tuple[str, ...]  #: its own config keys, besides method, weight and pairs


def kd_terms() -> List[KdTerm]:
    """The registered methods. Combine them in a config dict::

        {"distill": {"terms": [
            {"method": "edam", "pairs": ["V<-A"], "weight": 1.0, "temperature": 2.0},
            {"method": "logit_kd", "weight": 0.5, "temperature": 4.0}]}}
    """
    return [KdTerm(t["name"], t["summary"], tuple(t["keys"])) for t in _core.kd_terms()]
