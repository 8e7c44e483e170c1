"""A plugin that misbehaves on request, for the harness's fault cases.

MessageWillBePosted looks at the message: ``hang`` sleeps far past the 3 s hook limit in
plugin.json, ``crash`` kills the Python process in the middle of the hook, anything else is
tagged so the case can tell the hook ran. With ``MMPLUG_FAULTS_EXIT_AT_START`` in the
manifest's environment the module exits during import, after writing to stderr.
"""

import os
import sys
import time
from typing import Any

from mattermost_plugin import HookName, Plugin, Post, hook

if os.environ.get("MMPLUG_FAULTS_EXIT_AT_START"):
    sys.stderr.write("faults: refusing to start: missing license key\n")
    sys.exit(3)

HANG_SECONDS = 20.0


class Faults(Plugin):
    @hook(HookName.MessageWillBePosted)
    def message_will_be_posted(self, context: Any, post: Post) -> tuple[Post | None, str]:
        if post.message == "hang":
            time.sleep(HANG_SECONDS)
        elif post.message == "crash":
            sys.stderr.write("faults: crashing inside MessageWillBePosted\n")
            sys.stderr.flush()
            os._exit(9)
        post.props["seen_by"] = "faults"
        return post, ""
