"""JSON/WebSocket/Prometheus bridge in front of a CeleryStatusService.

A gRPC client only: it transcodes what the status service sends and never
talks to Celery itself.
"""

from __future__ import annotations

from .app import create_app
from .security import BridgeSecurity
from .server import BridgeServer, run_bridge
from .upstream import Timeouts

__all__ = ["BridgeSecurity", "BridgeServer", "Timeouts", "create_app", "run_bridge"]
