"""plugin.json, checked before anything is built from it.

The rules are the server's own (``model.Manifest.IsValid``: plugin id pattern and length, a
name, strict semantic versions, http(s) URLs, setting types) plus what a Python plugin bundle
needs: a version (it names the bundle file), ``server.executables`` keyed by platforms mmplug
can bundle, each at ``server/dist/plugin-<os>-<arch>``, and a ``props.mmplug`` block the
bridge accepts (it rejects unknown keys; timeouts must be positive and per-hook ones must name
real hooks) whose ``entry`` exists. All problems are reported at once.

The forms of Mattermost's own Python plugin manifests are read too (docs/upstream.md):
``server.runtime: "python"``, the entry module as ``server.executable`` ending in ``.py`` or
as ``server.python.entry_point``, and ``server.python.requirements_path`` (the requirements
file ``mmplug bundle`` installs; default ``requirements.txt``). ``props.mmplug.entry`` wins
when both name an entry. The shipped manifest leaves these out (so a server that runs such
plugins itself still starts the bridge) and names the entry in ``props.mmplug.entry``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from ..hooks import HookName
from .errors import CLIError

MANIFEST = "plugin.json"
DEFAULT_ENTRY = "plugin.py"
DEFAULT_REQUIREMENTS = "requirements.txt"
# server.python keys of Mattermost's own manifests (model.ManifestPython) and the one its
# example uses; dependency_mode and venv_path mean nothing in a bundle of wheels.
_PYTHON_KEYS = {"dependency_mode", "venv_path", "requirements_path", "entry_point"}

# model.IsValidPluginId: 3 to 190 characters of this set (the id names a directory).
_PLUGIN_ID = re.compile(r"^[a-zA-Z0-9_.-]{3,190}$")
# Masterminds semver StrictNewVersion: no "v" prefix, no leading zeros, all three parts.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
_SEMVER = re.compile(
    rf"^{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:-{_IDENT}(?:\.{_IDENT})*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$"
)
# convertTypeToPluginSettingType.
_SETTING_TYPES = {
    "bool",
    "dropdown",
    "generated",
    "radio",
    "text",
    "longtext",
    "number",
    "username",
    "custom",
}
_PLACEHOLDER_TYPES = {"generated", "text", "longtext", "number", "username", "custom"}
# The keys the bridge reads from props.mmplug (crates/bridge/src/manifest.rs).
_MMPLUG_KEYS = {
    "entry",
    "env",
    "ready_timeout_seconds",
    "hook_timeout_seconds",
    "hook_timeouts",
    "on_failure",
    "cpu_placement",
}
# Hooks whose last result is a rejection reason: the ones `on_failure` applies to (the bridge
# finds them in the schema, crates/bridge/src/bridge.rs gate_reason_field; docs/operations.md).
_GATING_HOOKS = {
    "UserWillLogIn",
    "MessageWillBePosted",
    "MessageWillBeUpdated",
    "ChannelWillBeArchived",
    "ChannelMemberWillBeAdded",
    "TeamMemberWillBeAdded",
    "FileWillBeUploaded",
    "FileWillBeDownloaded",
    "EmailNotificationWillBeSent",
    "NotificationWillBePushed",
    "ChannelWillBeUpdated",
    "ChannelWillBeRestored",
    "ScheduledPostWillBeCreated",
    "DraftWillBeUpserted",
}


@dataclass(frozen=True)
class Platform:
    """A server platform a bundle can carry, as Mattermost names it (GOOS-GOARCH)."""

    name: str
    elf_machine: int  # e_machine of the bridge binary
    machine_label: str  # how people call that machine
    wheel_arch: str  # the arch suffix of manylinux wheel tags (also platform.machine())
    rust_target: str
    # Debian's cross gcc for this machine (gcc-<arch>-linux-gnu), the linker cargo needs to
    # build the bridge for it on a machine of another architecture.
    cross_linker: str

    @property
    def executable(self) -> str:
        """Where the bridge binary sits in the bundle (the layout Go plugins use)."""
        return f"server/dist/plugin-{self.name}"


PLATFORMS: dict[str, Platform] = {
    "linux-amd64": Platform(
        "linux-amd64", 62, "x86-64", "x86_64", "x86_64-unknown-linux-gnu", "x86_64-linux-gnu-gcc"
    ),
    "linux-arm64": Platform(
        "linux-arm64",
        183,
        "aarch64",
        "aarch64",
        "aarch64-unknown-linux-gnu",
        "aarch64-linux-gnu-gcc",
    ),
}


@dataclass(frozen=True)
class PluginManifest:
    """A validated plugin.json."""

    dir: Path
    data: dict[str, Any]  # the whole document, key order kept
    id: str
    name: str
    version: str
    entry: str  # relative POSIX path of the Python entry module
    requirements: str = DEFAULT_REQUIREMENTS  # relative POSIX path of the requirements file

    @property
    def bundle_name(self) -> str:
        return f"{self.id}-{self.version}.tar.gz"

    def with_executables(self, platforms: list[Platform]) -> dict[str, Any]:
        """The document to ship: ``server.executables`` lists exactly the bundled platforms.

        The Python runtime fields of Mattermost's own manifests are left out (a server that
        runs Python plugins itself would otherwise start the .py instead of the bridge); the
        entry they named moves to ``props.mmplug.entry``, where the bridge reads it.
        """
        data = dict(self.data)
        server = dict(data.get("server") or {})
        upstream = _upstream_entry(server) is not None
        for key in ("runtime", "python"):
            server.pop(key, None)
        if isinstance(server.get("executable"), str) and server["executable"].endswith(".py"):
            del server["executable"]
        server["executables"] = {p.name: p.executable for p in platforms}
        data["server"] = server
        if upstream or self.entry != DEFAULT_ENTRY:
            props = dict(data.get("props") or {})
            settings = dict(props.get("mmplug") or {})
            settings["entry"] = self.entry
            props["mmplug"] = settings
            data["props"] = props
        return data


def _upstream_entry(server: Any) -> tuple[str, str] | None:
    """The entry module a manifest of Mattermost's own Python plugins names, and the field."""
    if not isinstance(server, dict):
        return None
    python = server.get("python")
    if isinstance(python, dict) and isinstance(python.get("entry_point"), str):
        return str(python["entry_point"]), '"server.python.entry_point"'
    executable = server.get("executable")
    if isinstance(executable, str) and executable.endswith(".py"):
        return executable, '"server.executable"'
    return None


def is_valid_plugin_id(plugin_id: str) -> bool:
    return bool(_PLUGIN_ID.match(plugin_id))


def is_semver(version: str) -> bool:
    return bool(_SEMVER.match(version))


def safe_relative_path(value: str) -> PurePosixPath | None:
    """``value`` as a relative path that stays inside its base, or None."""
    if not value or "\\" in value:
        return None
    path = PurePosixPath(value)
    if path.is_absolute() or any(part in ("..", "") for part in path.parts):
        return None
    return path


def load_manifest(plugin_dir: Path) -> PluginManifest:
    """Reads and validates ``plugin_dir/plugin.json``; raises CLIError naming every problem."""
    path = plugin_dir / MANIFEST
    if not plugin_dir.is_dir():
        raise CLIError(f"{plugin_dir} is not a directory")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CLIError(
            f"no {MANIFEST} in {plugin_dir}: is this a plugin directory? "
            "(`mmplug new NAME` creates one)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"cannot read {path}: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(
            f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from None
    if not isinstance(data, dict):
        raise CLIError(f"{path} must hold a JSON object")

    problems: list[str] = []
    plugin_id = _string(data, "id", problems, required=True)
    if plugin_id and not is_valid_plugin_id(plugin_id):
        problems.append(
            f'"id" {plugin_id!r} is not a valid plugin id (3 to 190 letters, digits, '
            '".", "_" or "-", e.g. "com.example.my-plugin")'
        )
    name = _string(data, "name", problems, required=True)
    if name is not None and not name.strip():
        problems.append('"name" is empty')
    version = _string(data, "version", problems, required=True)
    if version and not is_semver(version):
        problems.append(f'"version" {version!r} is not a semantic version like 0.1.0')
    min_server = _string(data, "min_server_version", problems)
    if min_server and not is_semver(min_server):
        problems.append(
            f'"min_server_version" {min_server!r} is not a semantic version like 9.11.0'
        )
    for key in ("homepage_url", "support_url", "release_notes_url"):
        url = _string(data, key, problems)
        if url and not _is_http_url(url):
            problems.append(f'"{key}" {url!r} is not an http(s) URL')
    icon = _string(data, "icon_path", problems)
    if icon:
        _check_file(plugin_dir, icon, '"icon_path"', problems)
    _check_server(data.get("server"), problems)
    webapp = data.get("webapp")
    if webapp is not None:
        if not isinstance(webapp, dict):
            problems.append('"webapp" must be an object')
        elif isinstance(webapp.get("bundle_path"), str):
            _check_file(plugin_dir, webapp["bundle_path"], '"webapp.bundle_path"', problems)
    _check_settings_schema(data.get("settings_schema"), problems)
    upstream_entry = _upstream_entry(data.get("server"))
    entry = _check_mmplug_props(plugin_dir, data.get("props"), problems, upstream_entry)
    requirements = _check_python(plugin_dir, data.get("server"), problems)

    if problems:
        raise CLIError(f"{path}: " + "; ".join(problems))
    assert plugin_id and name and version and entry
    return PluginManifest(plugin_dir, data, plugin_id, name, version, entry, requirements)


def _check_python(plugin_dir: Path, server: Any, problems: list[str]) -> str:
    """Checks the Python fields of Mattermost's own manifests; returns the requirements file."""
    if not isinstance(server, dict):
        return DEFAULT_REQUIREMENTS
    runtime = server.get("runtime")
    if runtime is not None and runtime != "python":
        problems.append(
            f'"server.runtime" is {runtime!r}; mmplug bundles Python plugins ("python")'
        )
    python = server.get("python")
    if python is None:
        return DEFAULT_REQUIREMENTS
    if not isinstance(python, dict):
        problems.append('"server.python" must be an object')
        return DEFAULT_REQUIREMENTS
    unknown = sorted(set(python) - _PYTHON_KEYS)
    if unknown:
        problems.append(
            f'"server.python" has unknown keys {", ".join(unknown)} (known: '
            f"{', '.join(sorted(_PYTHON_KEYS))})"
        )
    mode = python.get("dependency_mode")
    if mode is not None and mode not in ("system", "venv", "bundled"):
        problems.append(
            f'"server.python.dependency_mode" is {mode!r}; one of system, venv, bundled '
            "(mmplug bundles wheels whatever it says)"
        )
    requirements = python.get("requirements_path")
    if requirements is None:
        return DEFAULT_REQUIREMENTS
    if not isinstance(requirements, str):
        problems.append('"server.python.requirements_path" must be a string')
        return DEFAULT_REQUIREMENTS
    before = len(problems)
    _check_file(plugin_dir, requirements, '"server.python.requirements_path"', problems)
    return requirements if len(problems) == before else DEFAULT_REQUIREMENTS


def _string(
    data: dict[str, Any], key: str, problems: list[str], *, required: bool = False
) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(f'"{key}" is missing')
        return None
    if not isinstance(value, str):
        problems.append(f'"{key}" must be a string')
        return None
    return value


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_http_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _check_file(plugin_dir: Path, value: str, what: str, problems: list[str]) -> None:
    rel = safe_relative_path(value)
    if rel is None:
        problems.append(f"{what} {value!r} must be a relative path inside the plugin directory")
    elif not (plugin_dir / rel).is_file():
        problems.append(f"{what} {value!r} does not exist")


def _check_server(server: Any, problems: list[str]) -> None:
    if server is None:
        return
    if not isinstance(server, dict):
        problems.append('"server" must be an object')
        return
    executable = server.get("executable")
    if executable and not (isinstance(executable, str) and executable.endswith(".py")):
        problems.append(
            '"server.executable" is not used by mmplug bundles: list platforms under '
            '"server.executables" (mmplug bundle writes it for the platforms it bundles); '
            "a Python entry module ending in .py may be named there"
        )
    executables = server.get("executables")
    if executables is None:
        return
    if not isinstance(executables, dict):
        problems.append('"server.executables" must be an object')
        return
    known = ", ".join(PLATFORMS)
    for key, value in executables.items():
        platform = PLATFORMS.get(key)
        if platform is None:
            problems.append(
                f'"server.executables" names the platform {key!r}, which mmplug cannot bundle '
                f"(it bundles {known})"
            )
        elif value != platform.executable:
            problems.append(
                f'"server.executables.{key}" is {value!r}; the bridge for {key} is always '
                f'"{platform.executable}" in an mmplug bundle'
            )


def _check_settings_schema(schema: Any, problems: list[str]) -> None:
    if schema is None:
        return
    if not isinstance(schema, dict):
        problems.append('"settings_schema" must be an object')
        return
    settings: list[tuple[str, Any]] = []
    top = schema.get("settings") or []
    if not isinstance(top, list):
        problems.append('"settings_schema.settings" must be a list')
        top = []
    settings += [(f"settings_schema.settings[{i}]", s) for i, s in enumerate(top)]
    sections = schema.get("sections") or []
    if not isinstance(sections, list):
        problems.append('"settings_schema.sections" must be a list')
        sections = []
    for i, section in enumerate(sections):
        where = f"settings_schema.sections[{i}]"
        if not isinstance(section, dict) or not section.get("key"):
            problems.append(f'"{where}" needs a "key"')
            continue
        inner = section.get("settings") or []
        if isinstance(inner, list):
            settings += [(f"{where}.settings[{j}]", s) for j, s in enumerate(inner)]
    for where, setting in settings:
        if not isinstance(setting, dict):
            problems.append(f'"{where}" must be an object')
            continue
        kind = setting.get("type")
        if kind not in _SETTING_TYPES:
            problems.append(
                f'"{where}.type" {kind!r} is not a setting type (one of '
                f"{', '.join(sorted(_SETTING_TYPES))})"
            )
            continue
        if setting.get("regenerate_help_text") and kind != "generated":
            problems.append(f'"{where}": regenerate_help_text only applies to generated settings')
        if setting.get("placeholder") and kind not in _PLACEHOLDER_TYPES:
            problems.append(f'"{where}": a {kind} setting cannot have a placeholder')
        options = setting.get("options")
        if options is not None:
            if kind not in ("radio", "dropdown"):
                problems.append(f'"{where}": only radio and dropdown settings have options')
            elif not isinstance(options, list) or not all(
                isinstance(o, dict) and o.get("display_name") and o.get("value") for o in options
            ):
                problems.append(f'"{where}.options" need a display_name and a value each')


def _check_mmplug_props(
    plugin_dir: Path,
    props: Any,
    problems: list[str],
    upstream_entry: tuple[str, str] | None = None,
) -> str | None:
    """Checks ``props.mmplug`` as the bridge will read it; returns the entry module (the one
    ``props.mmplug.entry`` names, else ``upstream_entry``, else plugin.py)."""
    settings: Any = {}
    if props is not None:
        if not isinstance(props, dict):
            problems.append('"props" must be an object')
            return None
        settings = props.get("mmplug", {})
    if not isinstance(settings, dict):
        problems.append('"props.mmplug" must be an object')
        return None
    unknown = sorted(set(settings) - _MMPLUG_KEYS)
    if unknown:
        problems.append(
            f'"props.mmplug" has unknown keys {", ".join(unknown)} (the bridge knows '
            f"{', '.join(sorted(_MMPLUG_KEYS))})"
        )
    env = settings.get("env", [])
    if not isinstance(env, list) or not all(isinstance(v, str) for v in env):
        problems.append('"props.mmplug.env" must be a list of environment variable names')
    for key in ("ready_timeout_seconds", "hook_timeout_seconds"):
        if key in settings and not _is_positive_int(settings[key]):
            problems.append(f'"props.mmplug.{key}" must be a positive whole number of seconds')
    hook_timeouts = settings.get("hook_timeouts", {})
    if not isinstance(hook_timeouts, dict):
        problems.append('"props.mmplug.hook_timeouts" must be an object of hook names to seconds')
    else:
        for hook_name, seconds in hook_timeouts.items():
            if hook_name not in HookName.__members__:
                problems.append(
                    f'"props.mmplug.hook_timeouts" names {hook_name!r}, which is not a hook '
                    "(hooks are spelled as in Go, e.g. MessageWillBePosted)"
                )
            elif not _is_positive_int(seconds):
                problems.append(
                    f'"props.mmplug.hook_timeouts.{hook_name}" must be a positive whole number '
                    "of seconds"
                )
    on_failure = settings.get("on_failure", {})
    if not isinstance(on_failure, dict):
        problems.append('"props.mmplug.on_failure" must be an object of hook names to policies')
    else:
        for hook_name, policy in on_failure.items():
            if hook_name not in _GATING_HOOKS:
                problems.append(
                    f'"props.mmplug.on_failure" names {hook_name!r}, which is not a hook that '
                    f"can reject (one of: {', '.join(sorted(_GATING_HOOKS))})"
                )
            elif policy not in ("reject", "allow"):
                problems.append(
                    f'"props.mmplug.on_failure.{hook_name}" must be "reject" or "allow"'
                )
    if settings.get("cpu_placement", "together") not in ("together", "any"):
        problems.append('"props.mmplug.cpu_placement" must be "together" or "any"')
    what = '"props.mmplug.entry"'
    if "entry" not in settings and upstream_entry is not None:
        entry: Any
        entry, what = upstream_entry
    else:
        entry = settings.get("entry", DEFAULT_ENTRY)
    if not isinstance(entry, str):
        problems.append(f"{what} must be a string")
        return None
    before = len(problems)
    _check_file(plugin_dir, entry, what, problems)
    return entry if len(problems) == before else None
