"""Compute services a run switches: the disabled reason that names the run, who may switch a service back, and
what a drain left on each drained host.  Pure: the CLI and `apply` ask the cloud; this module only decides."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from hostmap.advice import explained
from hostmap.model import Host, Inventory
from hostmap.results import GOOD_OUTCOMES, MoveResult


def disabled_reason(run_id: int, purpose: str) -> str:
    """The `disabled_reason` hostmap gives a compute service it disables for run `run_id` (e.g. "drain")."""
    return f"hostmap run {run_id} ({purpose})"


def disabled_by(host: Host, run_id: int) -> bool:
    """True when `host`'s service is disabled and its reason is the one run `run_id` gave it.

    A service someone else disabled, or re-disabled since with another reason, is not the run's to enable.
    """
    return not host.enabled and (host.disabled_reason or "").startswith(f"hostmap run {run_id} (")


def with_enabled(inventory: Inventory, hosts: Iterable[str]) -> Inventory:
    """The inventory as it will be once the compute services of `hosts` are enabled (to plan before enabling)."""
    names = set(hosts)
    return replace(inventory, hosts=tuple(
        replace(h, enabled=True, disabled_reason=None) if h.name in names else h for h in inventory.hosts))


@dataclass(frozen=True)
class LeftServer:
    """A server still on a drained host after the run, and why."""

    server_id: str
    name: str
    status: str
    #: The run's last outcome for the server ("" when the run had no move for it, e.g. created meanwhile).
    outcome: str
    reason: str


@dataclass(frozen=True)
class DrainedHost:
    """A drained host after the run: its compute service and what is still on it."""

    host: str
    enabled: bool
    up: bool
    disabled_reason: str | None
    left: tuple[LeftServer, ...]

    @property
    def empty(self) -> bool:
        """True when no server is left on the host."""
        return not self.left


def drained_state(inventory: Inventory, hosts: Sequence[str], moves: Sequence[MoveResult]) -> tuple[DrainedHost, ...]:
    """Each of `hosts` as `inventory` (read after the run) shows it: the servers left, and the run's word on each."""
    last: dict[str, MoveResult] = {}
    for move in moves:
        last[move.server_id] = move
    by_name = {h.name: h for h in inventory.hosts}
    states: list[DrainedHost] = []
    for name in hosts:
        host = by_name.get(name)
        left = tuple(
            LeftServer(s.id, s.name, s.status, *_why_left(last.get(s.id)))
            for s in sorted(inventory.servers, key=lambda s: (s.name, s.id)) if s.host == name
        )
        states.append(DrainedHost(name, host.enabled if host else False, host.up if host else False,
                                  host.disabled_reason if host else None, left))
    return tuple(states)


def _why_left(move: MoveResult | None) -> tuple[str, str]:
    if move is None:
        return "", "not in the drain's plan (created or moved here while it ran)"
    if move.outcome in GOOD_OUTCOMES:
        return move.outcome, f"nova reports it back here after the run said {move.outcome}"
    return move.outcome, explained(move)
