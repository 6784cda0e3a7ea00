"""conveyor_driver: write conveyor drivers in Python (standard library only).

A driver is a long-running program with a ``reconcile`` function. A job written
``driver: NAME`` is run by the driver of that name: ``reconcile(payload, event, run_id,
logger)`` returns a :class:`DriverResult`, which becomes the job's outcome and outputs.
See README.md, and docs/drivers.md in the conveyor repository for the wire.
"""

from ._http import ConveyorError, LeaseLost
from .client import Client
from .driver import Driver, DriverResult
from .logger import Logger
from .manager import DriverManager

__all__ = [
    "Client",
    "ConveyorError",
    "Driver",
    "DriverManager",
    "DriverResult",
    "LeaseLost",
    "Logger",
]
__version__ = "0.1.0"
