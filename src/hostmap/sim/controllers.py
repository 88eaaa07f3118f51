"""The control plane's own nova services in the simulated cloud: a conductor and a scheduler (no HTTP).

Nova lists them beside the compute services (`os-services`, `os-hosts`, the availability-zone detail), in its
internal zone (`[DEFAULT] internal_service_availability_zone`), always enabled and reporting every
`report_interval_s`. Only nova-compute services can be updated (nova 34 answers 400 for the others).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hostmap.sim.scenario import INTERNAL_ZONE, sim_uuid

#: The host the control-plane services run on.
CONTROLLER_HOST = "controller"


@dataclass(frozen=True)
class ControllerService:
    """One control-plane service: its binary (`nova-conductor`), topic (`conductor`) and ids."""

    binary: str
    #: Its place after the compute services: the integer id below 2.53 is the number of hosts plus this.
    number: int
    host: str = CONTROLLER_HOST
    zone: str = INTERNAL_ZONE

    @property
    def topic(self) -> str:
        """The RPC topic `os-hosts` shows as the service."""
        return self.binary.removeprefix("nova-")

    @property
    def uuid(self) -> str:
        """Its id from 2.53."""
        return sim_uuid("service", self.host, self.binary)

    @staticmethod
    def heartbeat_s(now_s: float, interval_s: float) -> float:
        """Its last report: it has reported every `interval_s` since before the cloud started."""
        return math.floor(now_s / interval_s) * interval_s


CONTROLLER_SERVICES = (ControllerService("nova-conductor", 1), ControllerService("nova-scheduler", 2))
