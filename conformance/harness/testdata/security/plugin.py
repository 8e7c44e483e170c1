"""Reports the Python process's environment, for the harness's security cases.

GET /env answers ``os.environ`` as JSON. The manifest opts in to one server variable
(``MM_SERVICESETTINGS_SITEURL``); every other server secret must be missing.
"""

import json
import os

from mattermost_plugin import HookName, HTTPRequest, HTTPResponseWriter, Plugin, hook


class Security(Plugin):
    @hook(HookName.ServeHTTP)
    def http(self, context: object, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        if r.path != "/env":
            w.write_header(404)
            return
        w.headers["Content-Type"] = ["application/json"]
        w.write(json.dumps(dict(os.environ)).encode())
