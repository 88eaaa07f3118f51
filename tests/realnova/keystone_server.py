"""A real keystone on loopback, for the real-Nova test tier.  Runs inside the nova virtual environment.

    python keystone_server.py --workdir DIR --port P --password PW --compute-url URL --placement-url URL

Creates a sqlite database and fernet keys under DIR, bootstraps the admin user, project and the identity
endpoint, serves keystone's WSGI app on 127.0.0.1:P with a threaded server, registers the compute and placement
services in the catalog, then prints one line `READY {json}` on standard output and serves until killed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from wsgiref import simple_server


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger("keystone.http").debug(format, *args)


def _manage(conf: Path, *args: str) -> None:
    manage = Path(sys.executable).with_name("keystone-manage")
    subprocess.run([str(manage), "--config-file", str(conf), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _request(method: str, url: str, token: str | None, body: dict[str, object] | None = None) -> dict[str, object]:
    import requests

    headers = {"X-Auth-Token": token} if token else {}
    response = requests.request(method, url, json=body, headers=headers, timeout=30)
    response.raise_for_status()
    return {**(response.json() if response.content else {}), "subject_token": response.headers.get("X-Subject-Token")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--password", required=True)
    parser.add_argument("--compute-url", required=True)
    parser.add_argument("--placement-url", required=True)
    args = parser.parse_args()

    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{args.port}"
    conf = work / "keystone.conf"
    conf.write_text(
        "[DEFAULT]\n"
        f"log_file = {work / 'keystone.log'}\n"
        "[database]\n"
        f"connection = sqlite:///{work / 'keystone.sqlite'}\n"
        "[token]\nprovider = fernet\nexpiration = 7200\n"
        f"[fernet_tokens]\nkey_repository = {work / 'fernet-keys'}\n"
        f"[fernet_receipts]\nkey_repository = {work / 'fernet-keys'}\n"
        f"[credential]\nkey_repository = {work / 'credential-keys'}\n"
        "[cache]\nenabled = false\n",
        encoding="utf-8",
    )
    user = str(os.getuid())
    group = str(os.getgid())
    started = time.monotonic()
    _manage(conf, "db_sync")
    _manage(conf, "fernet_setup", "--keystone-user", user, "--keystone-group", group)
    _manage(conf, "credential_setup", "--keystone-user", user, "--keystone-group", group)
    _manage(conf, "bootstrap", f"--bootstrap-password={args.password}", "--bootstrap-admin-url", base + "/v3",
            "--bootstrap-public-url", base + "/v3", "--bootstrap-internal-url", base + "/v3",
            "--bootstrap-region-id", "RegionOne")

    os.environ["OS_KEYSTONE_CONFIG_FILES"] = str(conf)
    sys.argv[1:] = []  # keystone parses the command line as its own
    from keystone.server import wsgi

    app = wsgi.initialize_public_application()
    server = simple_server.make_server("127.0.0.1", args.port, app, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": args.password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    token = str(_request("POST", base + "/v3/auth/tokens", None, auth)["subject_token"])
    for kind, name, url in (("compute", "nova", args.compute_url), ("placement", "placement", args.placement_url)):
        service = _request("POST", base + "/v3/services", token, {"service": {"type": kind, "name": name}})
        service_id = service["service"]["id"]  # type: ignore[index]
        for interface in ("public", "internal", "admin"):
            _request("POST", base + "/v3/endpoints", token, {"endpoint": {
                "service_id": service_id, "interface": interface, "url": url, "region_id": "RegionOne"}})
    print("READY " + json.dumps({"auth_url": base + "/v3", "seconds": round(time.monotonic() - started, 2)}),
          flush=True)
    sys.stdin.read()  # the harness holds our stdin open: its end (the test run died) ends us too
    os._exit(0)


if __name__ == "__main__":
    main()
