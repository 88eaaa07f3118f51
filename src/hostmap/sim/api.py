"""The simulated cloud's HTTP face: Keystone v3, Nova and Placement as a Flask app.

The views only translate HTTP to calls on `hostmap.sim.state.SimCloud` and state back to the JSON
nova, placement and keystone return for the requested microversion: `keystone`, `nova`, `migrations`,
`hypervisors`, `aggregates`, `availability_zones` and `placement` hold their routes, `hooks` the request cycle
and `views` the helpers they share.
"""

from __future__ import annotations

from flask import Flask

from hostmap.sim import aggregates, availability_zones, hooks, hypervisors, keystone, migrations, nova, placement
from hostmap.sim.state import SimCloud
from hostmap.sim.views import CLOUD_KEY


def create_app(cloud: SimCloud) -> Flask:
    """The WSGI app serving `cloud` under /identity, /compute and /placement."""
    app = Flask("hostmap.sim")
    app.url_map.strict_slashes = False  # before any route is added: each rule reads it as it is added
    app.extensions[CLOUD_KEY] = cloud
    hooks.install(app)
    for module in (keystone, nova, migrations, hypervisors, aggregates, availability_zones, placement):
        app.register_blueprint(module.bp)
    return app
