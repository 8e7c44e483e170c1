"""A recurring job every second that records each run in the KV store.

The harness runs two processes of this plugin over one in-memory server, as two servers of a
cluster share one database (cases_jobs.go): the record ``beats`` (a JSON list of
``[start, end, pid]``, appended atomically) shows how often the job ran and where, and
``cron_beat`` is the job's last-run record in Go's format.
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Any

from mattermost_plugin import Plugin, every, run_plugin

INTERVAL = datetime.timedelta(seconds=1)


class Jobs(Plugin):
    @every(INTERVAL, name="beat")
    def beat(self) -> None:
        start = time.time()
        # A little work, so a run on one process overlaps the other's wake-up.
        time.sleep(0.05)

        def append(beats: Any) -> list[Any]:
            return [*(beats or []), [start, time.time(), os.getpid()]]

        self.kv_store.update("beats", append, max_attempts=50)


if __name__ == "__main__":
    run_plugin(Jobs)
