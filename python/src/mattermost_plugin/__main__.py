"""``python -m mattermost_plugin [path/to/plugin.py]``: run the plugin module's Plugin.

The bridge may start plugins this way (``MMPLUG_ENTRY`` names the module when no path is
given). The module is imported under its own name, not ``__main__``, so its
``if __name__ == "__main__": run_plugin(...)`` block does not run a second time; the single
``Plugin`` subclass it defines is then run.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path
from types import ModuleType

from . import logging as mmlogging
from .plugin import Plugin
from .runtime import run_plugin

log = logging.getLogger("mattermost_plugin.entry")


class EntryError(Exception):
    pass


def load_module(path: str | Path, name: str | None = None) -> ModuleType:
    """Imports the plugin file at ``path`` as module ``name`` (default: the file's own name;
    tests that load several plugins' ``plugin.py`` give each its own)."""
    file = Path(path).resolve()
    if not file.is_file():
        raise EntryError(f"plugin module {str(path)!r} does not exist")
    # Sibling modules of the plugin file import as in a script run.
    sys.path.insert(0, str(file.parent))
    if name is None:
        name = file.stem if file.stem != "__init__" else file.parent.name
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise EntryError(f"cannot import {path!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def find_plugin_class(module: ModuleType) -> type[Plugin]:
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Plugin)
        and obj is not Plugin
        and obj.__module__ == module.__name__
    ]
    if len(found) > 1:
        # A base class of the plugin's own beside it (as in plugins written for Mattermost's
        # own SDK, whose run_plugin names the class): the one class nothing derives from.
        leaves = [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]
        if len(leaves) == 1:
            return leaves[0]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise EntryError(
            f"{module.__file__} must define exactly one Plugin subclass, found {names}"
        )
    return found[0]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else os.environ.get("MMPLUG_ENTRY", "")
    if not path:
        print("usage: python -m mattermost_plugin path/to/plugin.py", file=sys.stderr)
        sys.exit(2)
    mmlogging.install()
    try:
        cls = find_plugin_class(load_module(path))
    except EntryError as e:
        log.error("%s", e)
        sys.exit(2)
    except Exception as e:  # the plugin module itself failed to import
        log.error("importing %s failed: %s", path, e, exc_info=e)
        sys.exit(1)
    run_plugin(cls)


if __name__ == "__main__":
    main()
