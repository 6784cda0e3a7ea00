"""What a driver is: a name, the resource types it listens to, and its reconcile function."""

from dataclasses import dataclass, field
from typing import Callable, Dict, List


@dataclass
class DriverResult:
    """The outcome of one reconcile: ``success``, a ``message`` (logged; a failure's
    reason) and ``data``, the job's outputs (string values)."""

    success: bool
    message: str = ""
    data: Dict[str, str] = field(default_factory=dict)


@dataclass
class Driver:
    """``reconcile(payload: dict, event: str, run_id: str, logger) -> DriverResult``."""

    name: str
    resources: List[str]
    reconcile: Callable[..., DriverResult]
