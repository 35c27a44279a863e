"""/version, /healthcheck, /6/docs/spec, /6/config: the platform describing itself.

The handlers live in `services.gateway.about`, shared with the Tasks and Sender API listeners
and Backport 3; this module only routes them.
"""

from __future__ import annotations

from services.gateway import about
from services.gateway.routing import RouteTable

table = RouteTable()

VERSION_OPS = {"/version": "getVersionUnprefixed", "/6/version": "getVersion"}
HEALTH_OPS = {"/healthcheck": "getHealthRedirect", "/6/healthcheck": "getHealth"}
SPEC_OPS = {"/6/docs/spec": "getSpec", "/docs/spec": "getSpecUnprefixed"}

for path, op in VERSION_OPS.items():
    table.route("GET", path, auth=None, op=op)(about.version_handler)
for path, op in HEALTH_OPS.items():
    table.route("GET", path, auth=None, op=op)(about.healthcheck_handler)
for path, op in SPEC_OPS.items():
    table.route("GET", path, auth=None, op=op)(about.spec_handler)
table.route("GET", "/6/config", auth=None, op="getConfig")(about.config_handler)
