"""``mmplug new NAME``: a plugin directory to start from, with the names filled in.

It holds plugin.json (id, name, version 0.1.0, the linux-amd64 and linux-arm64 executables:
the platforms mmplug bundles by default, and mmplug dev on an arm64 machine needs the second;
one example setting, ``props.mmplug.entry``), plugin.py (a hook, a slash command and an HTTP
route, typed for ``mypy --strict``), an empty requirements.txt, tests against
``mattermost_plugin.testing``, a README, tool settings and a .gitignore. Nothing is ever
overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from .errors import CLIError, UsageError
from .manifest import is_valid_plugin_id

# (template, file written) pairs.
_FILES = [
    ("plugin.json.tmpl", "plugin.json"),
    ("plugin.py.tmpl", "plugin.py"),
    ("requirements.txt.tmpl", "requirements.txt"),
    ("test_plugin.py.tmpl", "tests/test_plugin.py"),
    ("README.md.tmpl", "README.md"),
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("gitignore.tmpl", ".gitignore"),
]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Names:
    """Every spelling of the plugin's name the templates need."""

    name: str  # as given: my-plugin
    plugin_id: str  # com.example.my-plugin
    display_name: str  # My Plugin
    class_name: str  # MyPlugin
    trigger: str  # my-plugin (the slash command)

    @staticmethod
    def from_name(name: str, plugin_id: str | None) -> Names:
        if not _NAME.match(name):
            raise UsageError(
                f"plugin name {name!r} must start with a letter and hold only letters, digits, "
                "'-' and '_' (e.g. my-plugin)"
            )
        words = [w for w in re.split(r"[-_]+", name) if w]
        plugin_id = plugin_id if plugin_id is not None else f"com.example.{name.lower()}"
        if not is_valid_plugin_id(plugin_id):
            raise UsageError(
                f"--id {plugin_id!r} is not a valid plugin id (3 to 190 letters, digits, '.', "
                "'_' or '-', e.g. com.example.my-plugin)"
            )
        return Names(
            name=name,
            plugin_id=plugin_id,
            display_name=" ".join(w[:1].upper() + w[1:] for w in words),
            class_name="".join(w[:1].upper() + w[1:] for w in words),
            trigger="-".join(w.lower() for w in words),
        )


def render(template_name: str, names: Names) -> str:
    text = (
        resources.files("mattermost_plugin.cli")
        .joinpath("templates")
        .joinpath(template_name)
        .read_text("utf-8")
    )
    return Template(text).substitute(
        name=names.name,
        plugin_id=names.plugin_id,
        display_name=names.display_name,
        class_name=names.class_name,
        trigger=names.trigger,
    )


def create_plugin(name: str, *, plugin_id: str | None, directory: Path | None) -> Path:
    """Writes the new plugin into ``directory`` (default ./NAME); returns that directory.

    The directory must not exist or be empty, so nothing is ever overwritten.
    """
    names = Names.from_name(name, plugin_id)
    target = directory if directory is not None else Path(name)
    if target.exists():
        if not target.is_dir():
            raise CLIError(f"{target} exists and is not a directory")
        if any(target.iterdir()):
            raise CLIError(
                f"{target} already exists and is not empty; mmplug new never overwrites files "
                "(choose another --dir)"
            )
    rendered = [(dest, render(template, names)) for template, dest in _FILES]
    for dest, text in rendered:
        path = target / dest
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": fail rather than overwrite, even if a file appeared meanwhile.
        with path.open("x", encoding="utf-8") as f:
            f.write(text)
    return target
