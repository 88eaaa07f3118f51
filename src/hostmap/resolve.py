"""Resolve a host map against the cloud: host aliases to service hosts, names to unique servers, and policy checks."""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hostmap.errors import InputError, InputErrors
from hostmap.hostmap_file import Entry, HostMap
from hostmap.model import COLD_MIGRATABLE_STATUSES, MIGRATABLE_STATUSES, Host, Inventory, Server


@dataclass(frozen=True)
class Desired:
    """The resolved map: server id -> service host, with the map entry each came from."""

    targets: Mapping[str, str]
    entries: Mapping[str, Entry]


def _short(name: str) -> str:
    return name.split(".", 1)[0].lower()


def resolve_host(key: str, hosts: tuple[Host, ...]) -> list[Host]:
    """Hosts that `key` may name: service host or hypervisor hostname; a short name also matches an FQDN.

    A key written with a domain never matches a host in another domain.
    """
    matchers: list[Callable[[Host], bool]] = [
        lambda h: h.name == key,
        lambda h: h.hypervisor_hostname == key,
        lambda h: h.name.lower() == key.lower() or h.hypervisor_hostname.lower() == key.lower(),
    ]
    if "." not in key:
        matchers.append(lambda h: _short(h.name) == key.lower() or _short(h.hypervisor_hostname) == key.lower())
    for match in matchers:
        found = [h for h in hosts if match(h)]
        if found:
            return found
    return []


def _is_uuid(ref: str) -> bool:
    try:
        uuid.UUID(ref)
    except ValueError:
        return False
    return True


def resolve_server(ref: str, servers: tuple[Server, ...]) -> list[Server]:
    """Servers `ref` may name: an id (UUID) exactly, else every server with that exact name."""
    if _is_uuid(ref):
        by_id = [s for s in servers if s.id.lower() == ref.lower()]
        if by_id:
            return by_id
    return [s for s in servers if s.name == ref]


#: Suggestions are looked for only while fewer problems than this were found: a report lists that many at most, and
#: a map of thousands of unknown names must not cost thousands of searches.
SUGGEST_FOR_FIRST = 20


def _nearest(name: str, candidates: list[str], found: list[InputError]) -> list[str]:
    """The three candidates closest to `name` (difflib's ratio), for the first problems only."""
    if len(found) >= SUGGEST_FOR_FIRST:
        return []
    return difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)


def resolve(host_map: HostMap, inventory: Inventory, *, cold: bool = False,
            in_flight: frozenset[str] = frozenset()) -> Desired:
    """Resolve every entry; raise InputError(s) naming each entry that cannot be carried out.

    With `cold`, a SHUTOFF server may move too (by cold migration).  Servers in `in_flight` (ids) are still being
    moved by a request an earlier run sent: they are left out of the targets (not moved again, nor refused).
    """
    source = host_map.source
    errors: list[InputError] = []
    targets: dict[str, str] = {}
    entries: dict[str, Entry] = {}
    host_names = sorted(h.name for h in inventory.hosts)
    hosts_by_name = {h.name: h for h in inventory.hosts}
    all_server_names: list[str] = []

    def server_names() -> list[str]:
        if not all_server_names:
            all_server_names.extend(sorted({s.name for s in inventory.servers}))
        return all_server_names

    for key, host_entries in host_map.hosts:
        candidates = resolve_host(key, inventory.hosts)
        if not candidates:
            errors.append(InputError(
                source, f'"{key}"', "is not a compute host of this cloud",
                "use a compute service host or hypervisor hostname"
                + (f" (nearest: {', '.join(near)})" if (near := _nearest(key, host_names, errors)) else ""),
            ))
            continue
        if len(candidates) > 1:
            names = ", ".join(h.name for h in candidates)
            errors.append(InputError(
                source, f'"{key}"', f"matches several compute hosts ({names})", "write the full service host name",
            ))
            continue
        host = candidates[0]
        for entry in host_entries:
            matches = resolve_server(entry.ref, inventory.servers)
            if not matches:
                errors.append(InputError(
                    source, entry.where, f'no server named or with id "{entry.ref}"',
                    (f"nearest names: {', '.join(near)}; " if (near := _nearest(entry.ref, server_names(), errors))
                     else "") + "check the name with `hostmap export`, or give the server's UUID",
                ))
                continue
            if len(matches) > 1:
                ids = ", ".join(sorted(s.id for s in matches))
                errors.append(InputError(
                    source, entry.where, f'{len(matches)} servers are named "{entry.ref}" ({ids})',
                    "write the UUID of the one to move instead of the name",
                ))
                continue
            server = matches[0]
            earlier = entries.get(server.id)
            if earlier is not None:
                errors.append(InputError(
                    source, entry.where, f'names server {server.id}, already listed at {earlier.where}',
                    "list each server once",
                ))
                continue
            entries[server.id] = entry
            if server.id in in_flight:
                continue
            targets[server.id] = host.name
            if server.host == host.name:
                continue
            errors.extend(_movability(source, entry, server, host, hosts_by_name.get(server.host or ""), cold=cold))
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return Desired(targets, entries)


# What an operator does about a server in a state that cannot be migrated; anything else waits for nova.
_STATUS_HINTS = {
    "SUSPENDED": "resume it first (openstack server resume {id})",
    "SHELVED": "unshelve it first (openstack server unshelve {id})",
    "SHELVED_OFFLOADED": "unshelve it first (openstack server unshelve {id})",
    "RESCUE": "unrescue it first (openstack server unrescue {id})",
    "VERIFY_RESIZE": "confirm or revert its resize first (openstack server resize confirm {id})",
    "ERROR": "find out why it is in ERROR (openstack server show {id}) and repair it first",
}


def _status_hint(server: Server, *, cold: bool) -> str:
    hint = _STATUS_HINTS.get(server.status)
    if hint is None:  # MIGRATING, RESIZE, BUILD, REBOOT, ...: an operation is under way
        hint = f"wait until its current operation ends ({server.status}), then run again"
    elif cold and server.status == "SUSPENDED":
        hint = "resume or stop it first"
    return hint.format(id=server.id) + ", or remove it from the map"


def _movability(
    source: str, entry: Entry, server: Server, target: Host, origin: Host | None, *, cold: bool = False
) -> list[InputError]:
    problems: list[InputError] = []
    movable = MIGRATABLE_STATUSES | COLD_MIGRATABLE_STATUSES if cold else MIGRATABLE_STATUSES
    if origin is not None and not origin.up:
        problems.append(InputError(
            source, entry.where, f'server "{server.name}" ({server.id}) is on {origin.name}, whose compute service '
            "is down: nova cannot live-migrate a server off a host whose nova-compute does not answer",
            f"bring nova-compute up on {origin.name}, or remove the server from the map "
            "(for a host that is gone, `nova host-evacuate` rebuilds its servers elsewhere)",
        ))
    if server.status not in movable:
        if cold:
            problems.append(InputError(
                source, entry.where, f'server "{server.name}" ({server.id}) is {server.status}; only ACTIVE or '
                "PAUSED servers can be live-migrated, and only SHUTOFF ones cold-migrated",
                _status_hint(server, cold=cold),
            ))
        elif server.status in COLD_MIGRATABLE_STATUSES:
            problems.append(InputError(
                source, entry.where, f'server "{server.name}" ({server.id}) is {server.status}; only ACTIVE or PAUSED '
                "servers can be live-migrated", "run again with --cold to cold-migrate it (it stays SHUTOFF), "
                "start it first, or remove it from the map",
            ))
        else:
            problems.append(InputError(
                source, entry.where, f'server "{server.name}" ({server.id}) is {server.status}; only ACTIVE or PAUSED '
                "servers can be live-migrated", _status_hint(server, cold=cold),
            ))
    elif server.task_state:
        problems.append(InputError(
            source, entry.where, f'server "{server.name}" ({server.id}) is busy (task state {server.task_state})',
            "wait for the current operation to finish, then run again",
        ))
    if server.host is None:
        problems.append(InputError(
            source, entry.where, f'server "{server.name}" ({server.id}) is on no host', "remove it from the map",
        ))
    if not target.enabled:
        why = f" ({target.disabled_reason})" if target.disabled_reason else ""
        problems.append(InputError(
            source, entry.where, f"target compute service {target.name} is disabled{why}",
            "enable it (openstack compute service set --enable) or choose another host",
        ))
    elif not target.up:
        problems.append(InputError(
            source, entry.where, f"target compute service {target.name} is down",
            "bring nova-compute up on it or choose another host",
        ))
    return problems
