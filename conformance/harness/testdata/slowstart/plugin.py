"""A plugin that is slow to import: the bridge must still answer the server's handshake within
its 3-second start timeout, and activation must wait for Python instead of failing."""

import time

from mattermost_plugin import HookName, Plugin, hook

# Longer than go-plugin's StartTimeout (3 s) as Mattermost configures it.
IMPORT_DELAY_SECONDS = 4.0
time.sleep(IMPORT_DELAY_SECONDS)


class SlowStart(Plugin):
    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        self.logger.info("slowstart activated")
