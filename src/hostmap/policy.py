"""Hard server-group policies as nova's scheduler applies them to a live migration with a target host (pure).

* **anti-affinity**: a host passes while fewer than the group's ``max_server_per_host`` rule (1 by default)
  of its members are on it (ServerGroupAntiAffinityFilter).  The planner also counts a member while it is
  arriving, like placement counts its resources on both hosts, so no order of its steps ever puts two members
  on one host, even for a moment.
* **affinity**: a host passes only if a member of the group is on it (ServerGroupAffinityFilter, whose group
  hosts include the host of the server being moved).  So a member can only join another member: a group can
  not be moved to a new host one live migration at a time.
* soft-affinity and soft-anti-affinity are weighers, never refusals; they constrain nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping

from hostmap.errors import PolicyError, PolicyViolation
from hostmap.model import Inventory, ServerGroup

__all__ = ["check_policies", "exclusive_group_names", "exclusive_groups", "pinned_servers"]


def _hard(inventory: Inventory, policy: str, least: int) -> list[tuple[ServerGroup, list[str]]]:
    """Groups with `policy`, each with its members present in the inventory (at least `least`)."""
    present = {s.id for s in inventory.servers}
    found: list[tuple[ServerGroup, list[str]]] = []
    for group in sorted(inventory.groups, key=lambda g: (g.name, g.id)):
        members = [m for m in dict.fromkeys(group.members) if m in present]
        if group.policy == policy and len(members) >= least:
            found.append((group, members))
    return found


def exclusive_group_names(inventory: Inventory) -> list[str]:
    """The names of the groups `exclusive_groups` numbers, by number."""
    return [group.name for group, _ in _hard(inventory, "anti-affinity", 2)]


def exclusive_groups(inventory: Inventory) -> dict[str, tuple[tuple[int, int], ...]]:
    """Server id -> (group number, members allowed per host) for each hard anti-affinity group it is in."""
    tokens: dict[str, list[tuple[int, int]]] = {}
    for number, (group, members) in enumerate(_hard(inventory, "anti-affinity", 2)):
        for member in members:
            tokens.setdefault(member, []).append((number, max(1, group.max_per_host)))
    return {server: tuple(items) for server, items in tokens.items()}


def pinned_servers(inventory: Inventory) -> set[str]:
    """Ids of members of hard affinity groups: they can only join another member, never detour via a pivot."""
    return {member for _, members in _hard(inventory, "affinity", 1) for member in members}


def check_policies(inventory: Inventory, desired: Mapping[str, str]) -> None:
    """Raise `PolicyError` if the moves in `desired` (server id -> host) break a hard group policy at the end.

    Hosts that receive no member are not judged: a placement that already breaks a policy there is left as is.
    """
    servers = {s.id: s for s in inventory.servers}
    moving = {sid: host for sid, host in desired.items() if sid in servers and servers[sid].host != host}
    violations: list[PolicyViolation] = []
    for group, members in _hard(inventory, "anti-affinity", 2):
        final = {m: moving.get(m, servers[m].host) for m in members}
        for host in sorted({moving[m] for m in members if m in moving}):
            there = [m for m in members if final[m] == host]
            limit = max(1, group.max_per_host)
            if len(there) > limit:
                violations.append(PolicyViolation(
                    group=group.name, policy=group.policy, host=host,
                    servers=sorted(servers[m].name for m in there if m in moving),
                    members_on_host=sum(1 for m in there if m not in moving), limit=limit,
                ))
    # A lone member too: its own host is the only group host, so it cannot move at all.
    for group, members in _hard(inventory, "affinity", 1):
        staying = {servers[m].host for m in members if m not in moving}
        now = sorted({h for m in members if (h := servers[m].host) is not None})
        for host in sorted({moving[m] for m in members if m in moving}):
            if host not in staying:
                violations.append(PolicyViolation(
                    group=group.name, policy=group.policy, host=host,
                    servers=sorted(servers[m].name for m in members if moving.get(m) == host), group_hosts=now,
                ))
    if violations:
        # By group, then host: one order however the groups' policies mix.
        raise PolicyError(sorted(violations, key=lambda v: (v.group, v.host)))
