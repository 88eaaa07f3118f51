"""Run the simulated cloud over real HTTP in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hostmap.clock import Clock, VirtualClock, WallClock
from hostmap.sim.api import create_app
from hostmap.sim.scenario import Scenario
from hostmap.sim.state import SimCloud
from hostmap.sim.views import PUBLIC_URL_KEY


class _QuietHandler(WSGIRequestHandler):
    """A request handler that logs nothing and lets the server close its connection on stop."""

    def setup(self) -> None:
        super().setup()
        tracked: set[socket.socket] = getattr(self.server, "open_connections", set())
        lock: threading.Lock | None = getattr(self.server, "connections_lock", None)
        if lock is not None:
            with lock:
                tracked.add(self.connection)

    def finish(self) -> None:
        lock: threading.Lock | None = getattr(self.server, "connections_lock", None)
        tracked: set[socket.socket] = getattr(self.server, "open_connections", set())
        if lock is not None:
            with lock:
                tracked.discard(self.connection)
        super().finish()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are recorded in the cloud's state, not logged."""

    def log(self, type: str, message: str, *args: Any) -> None:
        """Nothing is logged (werkzeug's messages could carry request details)."""


class SimServer:
    """The simulated cloud listening on `host:port` (0 = any free port) until `stop()`."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
    ) -> None:
        """`public_url` is what the service catalog names (a proxy in front, say); by default the address bound,
        or, bound to every address, the host each request came to."""
        self.scenario = scenario
        self._public_url = public_url
        self.clock: Clock = clock if clock is not None else WallClock()
        self.state = SimCloud(scenario, self.clock)
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SimServer:
        """Bind and serve in a background thread; returns once the port is listening."""
        if self._server is not None:
            return self
        app = create_app(self.state)
        server = make_server(self._host, self._port, app, threaded=True, request_handler=_QuietHandler)
        if self._public_url is not None:
            app.config[PUBLIC_URL_KEY] = self._public_url
        elif self._host not in ("", "0.0.0.0", "::"):
            host = f"[{self._host}]" if ":" in self._host else self._host
            app.config[PUBLIC_URL_KEY] = f"http://{host}:{server.server_port}"
        # Track request threads so that stop() can join them (werkzeug makes them daemons).
        server.daemon_threads = False  # type: ignore[attr-defined]
        server.open_connections = set()  # type: ignore[attr-defined]
        server.connections_lock = threading.Lock()  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="hostmap-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and join every thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join()
        with server.connections_lock:  # type: ignore[attr-defined]
            connections = list(server.open_connections)  # type: ignore[attr-defined]
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        self._server = None
        self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("the simulated cloud is not running")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        """http://host:port of the running server."""
        return f"http://{self._host}:{self.port}"

    @property
    def auth_url(self) -> str:
        """The keystone v3 endpoint clients authenticate against."""
        return f"{self.base_url}/identity/v3"

    def env(self) -> dict[str, str]:
        """OS_* environment variables for clients of this cloud."""
        return {
            "OS_AUTH_URL": self.auth_url,
            "OS_USERNAME": self.state.username,
            "OS_PASSWORD": self.state.password,
            "OS_PROJECT_NAME": self.state.project_name,
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_REGION_NAME": "RegionOne",
            "OS_INTERFACE": "public",
            "OS_IDENTITY_API_VERSION": "3",
        }

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `openstack.connect(**kwargs)`.

        On a virtual clock keystoneauth's retry backoff (real sleeps) would make an injected outage last minutes
        of wall time: its retries come at once instead, and the waits that matter run on the virtual clock.
        """
        instant = (
            {"connect_retry_delay": 0.001, "status_code_retry_delay": 0.001}
            if isinstance(self.clock, VirtualClock) else {}
        )
        return {
            **instant,
            "auth": {
                "auth_url": self.auth_url,
                "username": self.state.username,
                "password": self.state.password,
                "project_name": self.state.project_name,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": "RegionOne",
            "interface": "public",
            "identity_api_version": "3",
            "verify": False,
        }

    def __repr__(self) -> str:
        return f"SimServer({self._host}:{self._port}, running={self._server is not None})"
