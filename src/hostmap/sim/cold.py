"""Cold migration in the simulated cloud, as nova 34 runs it: `migrate`, RESIZE, VERIFY_RESIZE, confirm and revert.

A cold migration is a resize to the same flavor. Nova's API checks the server (vm_state active or stopped, no task,
its host's service up) and the requested host (not the current one, known), records a migration of type `migration`
and casts to the conductor, whose scheduler checks the host as for a live migration; a refusal ends the migration
`error` and leaves the server as it was. Otherwise the server goes through task states resize_prep (migration
`pre-migrating`), resize_migrating (`migrating`: its local disk is copied), resize_migrated and resize_finish
(`post-migrating`), and lands on the destination as VERIFY_RESIZE (vm_state resized, migration `finished`), still
powered off if it was. Placement holds the flavor on both hosts (the migration's uuid is the source's consumer)
until `confirmResize` (migration `confirmed`, the server back to SHUTOFF or ACTIVE by its power state) or
`revertResize` (`reverting`, then `reverted` with the server back on its source).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from hostmap.sim.state import (
    Consumer,
    SimAction,
    SimCloud,
    SimError,
    SimEvent,
    SimHost,
    SimInstance,
    SimMigration,
    log,
)
from hostmap.timing import cold_copy_s, gbps_to_bytes_per_s

#: Nova's power_state SHUTDOWN: a server in it stays stopped through a cold migration and its confirm.
SHUTDOWN = 4
#: What nova's conductor records when the scheduler finds no host for a cold migration.
NO_HOST_FOR_COLD = "No valid host was found. No valid host found for cold migrate"
#: What a phase of a cold migration does when it ends.
Phase = Callable[[SimCloud, SimMigration], None]
#: nova.exception.ServiceUnavailable, which the API answers with 409.
SERVICE_UNAVAILABLE = "Service is unavailable at this time."


def cold_migrate(cloud: SimCloud, server_id: str, host: str | None, *, request_id: str) -> SimMigration | None:
    """Nova's `migrate` server action after body validation; SimError for what the API refuses at once.

    Returns the migration record (status `error` when the scheduler refused), None when nova would create none.
    """
    with cloud.view():
        server = cloud.get_server(server_id)
        if server.vm_state not in ("active", "stopped"):
            raise SimError(409, f"Cannot 'migrate' instance {server.id} while it is in vm_state {server.vm_state}")
        if server.task_state is not None:
            raise SimError(409, f"Cannot 'migrate' instance {server.id} while it is in task_state "
                                f"{server.task_state}")
        source = cloud.hosts[server.host]
        if not source.alive:
            raise SimError(409, SERVICE_UNAVAILABLE)
        target = None
        if host is not None:
            if host == server.host:
                raise SimError(400, "Cannot migrate to the host where the server exists.")
            target = cloud.hosts.get(host)
            if target is None:
                raise SimError(400, f"Compute host {host} could not be found.")
        action = SimAction("migrate", request_id, server.id, cloud.user_id, server.project_id, cloud._t, cloud._t)
        cloud.actions[server.id].append(action)
        conductor = SimEvent("conductor_migrate_server", cloud._t, "controller", cloud._t)
        action.events.append(conductor)
        dest = _schedule(cloud, server, target)
        m = cloud._new_migration(server, source, dest or target or source, request_id)
        m.migration_type = "migration"
        if dest is None:
            m.status = "error"
            m.error = NO_HOST_FOR_COLD
            conductor.result, conductor.details = "Error", NO_HOST_FOR_COLD
            conductor.traceback = (
                "Traceback (most recent call last):\n"
                '  File "/usr/lib/python3/dist-packages/nova/conductor/manager.py", line 417, in _cold_migrate\n'
                "    task.execute()\n"
                f"nova.exception.NoValidHost: {NO_HOST_FOR_COLD}\n"
            )
            action.message = "Error"
            return m
        conductor.result = "Success"
        cloud.consumers[m.uuid] = Consumer(server.project_id, server.user_id, {source.name: server.resources})
        cloud.consumers[server.id].allocations = {dest.name: server.resources}
        cloud.consumers[server.id].generation += 1
        dest.generation += 1
        server.task_state, server.updated_s = "resize_prep", cloud._t
        m.status, m.started_s = "pre-migrating", cloud._t
        action.events.append(SimEvent("compute_prep_resize", cloud._t, dest.name))
        _next_phase(cloud, m, cloud.params.setup_s, _start_copy)
        return m


def _schedule(cloud: SimCloud, server: SimInstance, target: SimHost | None) -> SimHost | None:
    """The host nova's scheduler picks (the requested one if it passes its filters), None when none passes."""
    candidates = [target] if target is not None else [h for h in cloud.hosts.values() if h.name != server.host]
    fitting: list[SimHost] = []
    for host in candidates:
        reason = cloud._filter(server, host, cloud.shortfall(host, server.resources))
        if reason is None:
            fitting.append(host)
        else:
            log.info("scheduler refused %s for a cold migration to %s: %s", server.id, host.name, reason)
    if not fitting:
        return None
    free = {h.name: cloud.capacity(h)[1] - cloud.usage(h.name)[1] for h in fitting}
    return max(fitting, key=lambda h: (free[h.name], -h.index))


def _next_phase(cloud: SimCloud, m: SimMigration, seconds: float, then: Phase) -> None:
    m.phase_end_s = cloud._t + seconds
    m.on_phase_end = partial(then, cloud, m)


def _idle(m: SimMigration) -> None:
    m.phase_end_s, m.on_phase_end = None, None


def _action(cloud: SimCloud, m: SimMigration, name: str) -> SimAction | None:
    return next((a for a in reversed(cloud.actions.get(m.server_id, []))
                 if a.action == name and a.request_id == m.request_id), None)


def _end_event(cloud: SimCloud, m: SimMigration, name: str) -> None:
    action = _action(cloud, m, "migrate")
    event = action.event(name) if action is not None else None
    if event is not None and event.finish_s is None:
        event.finish_s, event.result = cloud._t, "Success"
    if action is not None:
        action.updated_s = cloud._t


def _start_copy(cloud: SimCloud, m: SimMigration) -> None:
    """prep_resize done on the destination: the source powers the guest off (if it runs) and copies its disk."""
    server = cloud.servers[m.server_id]
    _end_event(cloud, m, "compute_prep_resize")
    m.status, m.copy_started_s, m.updated_s = "migrating", cloud._t, cloud._t
    server.task_state, server.updated_s = "resize_migrating", cloud._t
    server.power_state = SHUTDOWN  # nova's migrate_disk_and_power_off stops a running guest first
    action = _action(cloud, m, "migrate")
    if action is not None:
        action.events.append(SimEvent("compute_resize_instance", cloud._t, m.source))
    rate = min(gbps_to_bytes_per_s(cloud.params.stream_gbps), cloud.hosts[m.source].nic_bps,
               cloud.hosts[m.dest].nic_bps)
    _next_phase(cloud, m, cold_copy_s(server.flavor.disk, rate), _finish_on_dest)


def _finish_on_dest(cloud: SimCloud, m: SimMigration) -> None:
    """The disk is on the destination: the server's host changes there and finish_resize runs."""
    server = cloud.servers[m.server_id]
    _end_event(cloud, m, "compute_resize_instance")
    m.status, m.updated_s = "post-migrating", cloud._t
    server.host, server.node = m.dest, m.dest_node
    server.task_state, server.updated_s = "resize_finish", cloud._t
    cloud.hosts[m.source].generation += 1
    action = _action(cloud, m, "migrate")
    if action is not None:
        action.events.append(SimEvent("compute_finish_resize", cloud._t, m.dest))
    _next_phase(cloud, m, cloud.params.setup_s, _finished)


def _finished(cloud: SimCloud, m: SimMigration) -> None:
    """VERIFY_RESIZE: the server waits on the destination for a confirm or a revert, powered as before."""
    server = cloud.servers[m.server_id]
    _end_event(cloud, m, "compute_finish_resize")
    _idle(m)
    m.status, m.finished_s, m.updated_s = "finished", cloud._t, cloud._t
    # finish_resize powers the guest on only if it ran before (old vm_state active); a stopped one stays off.
    server.power_state = 1 if server.vm_state == "active" else SHUTDOWN
    server.vm_state, server.task_state, server.updated_s = "resized", None, cloud._t


def _finished_migration(cloud: SimCloud, server: SimInstance, verb: str) -> SimMigration:
    """Nova's checks before a confirm or revert: vm_state resized, no task, a migration `finished`."""
    if server.vm_state != "resized":
        raise SimError(409, f"Cannot '{verb}' instance {server.id} while it is in vm_state {server.vm_state}")
    if server.task_state is not None:
        raise SimError(409, f"Cannot '{verb}' instance {server.id} while it is in task_state {server.task_state}")
    m = next((m for m in reversed(cloud.migrations)
              if m.server_id == server.id and m.migration_type == "migration" and m.status == "finished"), None)
    if m is None:
        raise SimError(400, "Instance has not been resized.")
    return m


def confirm_resize(cloud: SimCloud, server_id: str, *, request_id: str) -> None:
    """`confirmResize` (204): the source's copy and its allocation go; the server stays powered as it is."""
    with cloud.view():
        server = cloud.get_server(server_id)
        m = _finished_migration(cloud, server, "confirmResize")
        if not cloud.hosts[m.source].alive:
            raise SimError(409, SERVICE_UNAVAILABLE)
        action = SimAction("confirmResize", request_id, server.id, cloud.user_id, server.project_id, cloud._t,
                           cloud._t)
        action.events.append(SimEvent("compute_confirm_resize", cloud._t, m.source, cloud._t, "Success"))
        cloud.actions[server.id].append(action)
        # Nova's compute manager sets the vm_state from the power state it finds (stopped if powered off).
        server.vm_state = "stopped" if server.power_state == SHUTDOWN else "active"
        server.updated_s = cloud._t
        m.status, m.updated_s = "confirmed", cloud._t
        cloud.consumers.pop(m.uuid, None)
        cloud.hosts[m.source].generation += 1


def revert_resize(cloud: SimCloud, server_id: str, *, request_id: str) -> None:
    """`revertResize` (202): REVERT_RESIZE for `setup_s`, then the server is back on its source, as it was."""
    with cloud.view():
        server = cloud.get_server(server_id)
        m = _finished_migration(cloud, server, "revertResize")
        action = SimAction("revertResize", request_id, server.id, cloud.user_id, server.project_id, cloud._t,
                           cloud._t)
        action.events.append(SimEvent("compute_revert_resize", cloud._t, m.dest))
        cloud.actions[server.id].append(action)
        server.task_state, server.updated_s = "resize_reverting", cloud._t
        m.status, m.updated_s = "reverting", cloud._t
        _next_phase(cloud, m, cloud.params.setup_s, _reverted)


def _reverted(cloud: SimCloud, m: SimMigration) -> None:
    server = cloud.servers[m.server_id]
    _idle(m)
    action = next((a for a in reversed(cloud.actions.get(m.server_id, [])) if a.action == "revertResize"), None)
    if action is not None:
        for event in action.events:
            if event.finish_s is None:
                event.finish_s, event.result = cloud._t, "Success"
        action.updated_s = cloud._t
    server.host, server.node = m.source, m.source_node
    server.vm_state = "stopped" if server.power_state == SHUTDOWN else "active"
    server.task_state, server.updated_s = None, cloud._t
    m.status, m.updated_s = "reverted", cloud._t
    claim = cloud.consumers.pop(m.uuid, None)
    consumer = cloud.consumers[m.server_id]
    consumer.allocations = dict(claim.allocations) if claim else {m.source: server.resources}
    consumer.generation += 1
    cloud.hosts[m.dest].generation += 1

