"""``python -m mattermost_plugin.cli``: the same as the ``mmplug`` command."""

from __future__ import annotations

import sys

from .main import main

sys.exit(main())
