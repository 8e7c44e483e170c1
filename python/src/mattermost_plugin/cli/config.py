"""``mmplug config get|set``: a plugin's settings (``PluginSettings.Plugins[ID]``) over the REST
API, for plugins without a webapp that would otherwise be configured only in the System Console.

What the server does, and so what this does (Mattermost 11.4, server/channels/api4/config.go,
config_local.go, server/config, server/channels/app/plugin_api.go):

* ``GET /api/v4/config`` and ``PUT /api/v4/config/patch`` are served over a token (a system
  admin, or a role with the System Console's plugin permissions) and in local mode. Over a token
  the configuration is sanitized: settings the manifest marks ``secret`` read ``********``, and
  the settings of plugins that are not installed are left out. Local mode gets it as stored.
* The patch merges structs field by field, but a map in the patch replaces the stored map whole:
  ``PluginSettings.Plugins`` must be sent complete, every plugin's settings, or the others are
  deleted. ``set`` therefore reads the configuration, changes the one plugin's entry and sends
  the whole map back. A ``********`` sent back is replaced by the stored value when the server
  saves (``desanitize``), so masked secrets survive; what a token cannot see (the settings of
  plugins not installed) is lost, which local mode avoids.
* Keys are stored as given; nothing in the server lower-cases them. A plugin reads them with
  ``LoadPluginConfiguration``, which lower-cases every stored key and every manifest key (and so
  matches keys case-insensitively), and the System Console saves keys lower-cased. ``set``
  writes the lower-cased key and drops any other spelling of it, since two spellings of one key
  would reach the plugin in an arbitrary order.
* Values are typed by the installed plugin's ``settings_schema`` (``GET /api/v4/plugins``, served
  in local mode too): see ``typed_value``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .console import progress
from .errors import CLIError, UsageError
from .server import MattermostClient

# What the server shows instead of a secret value (model.FakeSetting).
FAKE_SETTING = "********"
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# Setting types whose value is text as typed (model.PluginSetting.Type).
_TEXT_TYPES = frozenset({"text", "longtext", "generated", "username"})
_OPTION_TYPES = frozenset({"dropdown", "radio"})


@dataclass(frozen=True)
class Assignment:
    key: str
    raw: str


def parse_assignments(items: Sequence[str]) -> list[Assignment]:
    """``KEY=VALUE`` arguments; a usage error for one without ``=``, an empty key or a key
    given twice (in any spelling)."""
    result: list[Assignment] = []
    seen: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{item!r} is not KEY=VALUE (e.g. Action=reject)")
        key = key.strip()
        if key.lower() in seen:
            raise UsageError(f"{key} is given twice (as {seen[key.lower()]} before)")
        seen[key.lower()] = key
        result.append(Assignment(key, raw))
    return result


def installed_manifests(client: MattermostClient) -> list[dict[str, Any]]:
    """The installed plugins' manifests, from ``GET /api/v4/plugins``."""
    listing = client.plugins()
    return listing["active"] + listing["inactive"]


def find_manifest(
    manifests: Sequence[Mapping[str, Any]], plugin_id: str, where: str
) -> Mapping[str, Any]:
    """The installed plugin's manifest among ``manifests``."""
    for manifest in manifests:
        if manifest.get("id") == plugin_id:
            return manifest
    near = [
        str(m.get("id")) for m in manifests if str(m.get("id", "")).lower() == plugin_id.lower()
    ]
    hint = f" (did you mean {near[0]}? ids are case-sensitive)" if near else ""
    raise CLIError(
        f"plugin {plugin_id} is not installed on {where}{hint}; upload it first with "
        "`mmplug deploy`"
    )


def schema_settings(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The manifest's settings (``settings_schema.settings`` and each section's), by lower-cased
    key; None when the manifest has no ``settings_schema``."""
    schema = manifest.get("settings_schema")
    if not isinstance(schema, dict):
        return None
    settings: dict[str, dict[str, Any]] = {}
    groups = [schema.get("settings")] + [
        s.get("settings") for s in schema.get("sections") or [] if isinstance(s, dict)
    ]
    for group in groups:
        for setting in group or []:
            if isinstance(setting, dict) and isinstance(setting.get("key"), str):
                settings.setdefault(setting["key"].lower(), setting)
    return settings


def loose_value(raw: str) -> Any:
    """VALUE as JSON when it is JSON (``5``, ``true``, ``null``, ``["a"]``, ``"quoted"``), else
    the text as given."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def typed_value(setting: Mapping[str, Any] | None, key: str, raw: str) -> Any:
    """VALUE typed for the setting the manifest declares (None: loosely, ``loose_value``).

    ``bool``: true/false (also yes/no, on/off, 1/0, any case) as a JSON boolean. ``number``: a
    whole number as a JSON number (the System Console's number setting is an integer).
    ``dropdown``/``radio``: one of the options' values, exactly, as text. ``text``,
    ``longtext``, ``generated``, ``username``: the text as given, never parsed (``42`` stays
    ``"42"``). ``custom`` and types this version does not know: loosely, as without a schema.
    """
    if setting is None:
        return loose_value(raw)
    kind = str(setting.get("type", ""))
    name = setting.get("key", key)
    if kind == "bool":
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise CLIError(f"{name} is a bool setting: {raw!r} is not true or false")
    if kind == "number":
        try:
            return int(raw.strip())
        except ValueError:
            raise CLIError(f"{name} is a number setting: {raw!r} is not a whole number") from None
    if kind in _OPTION_TYPES:
        options = [str(o.get("value")) for o in setting.get("options") or [] if isinstance(o, dict)]
        if options and raw not in options:
            raise CLIError(
                f"{name} is a {kind} setting: {raw!r} is not one of its options "
                f"({', '.join(options)})"
            )
        return raw
    if kind in _TEXT_TYPES:
        return raw
    return loose_value(raw)


def _settings_of(config: Mapping[str, Any], plugin_id: str) -> dict[str, Any]:
    plugin_settings = config.get("PluginSettings")
    plugins = plugin_settings.get("Plugins") if isinstance(plugin_settings, dict) else None
    mine = plugins.get(plugin_id) if isinstance(plugins, dict) else None
    return dict(mine) if isinstance(mine, dict) else {}


def _show(value: Any, raw_json: bool) -> str:
    if isinstance(value, str) and not raw_json:
        return value
    return json.dumps(value)


def get(
    client: MattermostClient,
    plugin_id: str,
    key: str | None,
    *,
    effective: bool = False,
    raw_json: bool = False,
) -> None:
    """Prints the plugin's stored settings as a JSON object, or one key's value."""
    manifest = find_manifest(installed_manifests(client), plugin_id, client.where)
    stored = _settings_of(client.get_config(), plugin_id)
    schema = schema_settings(manifest) or {}
    if key is None:
        if effective:
            # What LoadPluginConfiguration gives the plugin: the manifest's defaults, then the
            # stored values, every key lower-cased.
            shown: dict[str, Any] = {k: s.get("default") for k, s in schema.items()}
            shown.update({k.lower(): v for k, v in stored.items()})
        else:
            shown = stored
        print(json.dumps(shown, indent=2, sort_keys=True))
        return
    matches = [k for k in stored if k.lower() == key.lower()]
    if matches:
        # Two spellings of one key: the plugin sees either; say so rather than pick silently.
        if len(matches) > 1:
            progress(
                f"warning: {plugin_id} has {key} stored under {len(matches)} spellings "
                f"({', '.join(sorted(matches))}); the plugin sees one of them, at random; "
                f"`mmplug config set {plugin_id} {key}=...` stores one"
            )
        preferred = key.lower() if key.lower() in matches else sorted(matches)[0]
        print(_show(stored[preferred], raw_json))
        return
    setting = schema.get(key.lower())
    if setting is not None:
        progress(f"{plugin_id}: {setting.get('key', key)} is not set; this is its default")
        print(_show(setting.get("default"), raw_json))
        return
    raise CLIError(_unknown_key(plugin_id, key, stored, schema))


def _unknown_key(
    plugin_id: str, key: str, stored: Mapping[str, Any], schema: Mapping[str, Any]
) -> str:
    known = sorted({str(s.get("key", k)) for k, s in schema.items()} | set(stored))
    listed = f": its settings are {', '.join(known)}" if known else " (it declares none)"
    return f"{plugin_id} has no setting {key}{listed}"


def set_(
    client: MattermostClient,
    plugin_id: str,
    assignments: Sequence[Assignment],
    *,
    no_schema: bool = False,
) -> None:
    """Types each value, then saves the plugin's settings with ``PUT /api/v4/config/patch``
    and prints them as saved (JSON)."""
    manifests = installed_manifests(client)
    manifest = find_manifest(manifests, plugin_id, client.where)
    schema = None if no_schema else schema_settings(manifest)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for a in assignments:
        setting = None
        if schema is not None:
            setting = schema.get(a.key.lower())
            if setting is None:
                problems.append(
                    _unknown_key(plugin_id, a.key, {}, schema)
                    + " (--no-schema writes keys the manifest does not declare)"
                )
                continue
        try:
            values[a.key.lower()] = typed_value(setting, a.key, a.raw)
        except CLIError as e:
            problems.append(str(e))
    if problems:
        raise CLIError("; ".join(problems))

    config = client.get_config()
    plugin_settings = config.get("PluginSettings")
    if not isinstance(plugin_settings, dict):
        raise CLIError(
            "the server's configuration has no PluginSettings: the account may not read the "
            "plugin settings (System Console > Plugins needs sysconsole_read_plugins)"
        )
    plugins = plugin_settings.get("Plugins")
    plugins = dict(plugins) if isinstance(plugins, dict) else {}
    mine = dict(plugins.get(plugin_id) or {})
    for key, value in values.items():
        for other in [k for k in mine if k.lower() == key and k != key]:
            progress(f"{plugin_id}: replacing {other} with {key} (the spelling the plugin reads)")
            del mine[other]
        mine[key] = value
    plugins[plugin_id] = mine
    if not client.local:
        _warn_hidden(config, plugins, {str(m.get("id")) for m in manifests})
    saved = client.patch_config({"PluginSettings": {"Plugins": plugins}})
    after = _settings_of(saved, plugin_id)
    for key, value in values.items():
        if after.get(key) != value and after.get(key) != FAKE_SETTING:
            raise CLIError(
                f"the server saved the configuration but {plugin_id}'s {key} reads "
                f"{after.get(key)!r}, not {value!r} (a plugin's ConfigurationWillBeSaved hook "
                "may have changed it)"
            )
    progress(f"saved {', '.join(values)} for {plugin_id} on {client.where}")
    print(json.dumps(after, indent=2, sort_keys=True))


def _warn_hidden(
    config: Mapping[str, Any], plugins: Mapping[str, Any], installed: set[str]
) -> None:
    """Over a token the server leaves out the settings of plugins that are not installed, and
    the patch replaces the whole map: name the plugins that may have had settings (those with a
    plugin state that are not installed)."""
    plugin_settings = config.get("PluginSettings")
    states = plugin_settings.get("PluginStates") if isinstance(plugin_settings, dict) else None
    if not isinstance(states, dict):
        return
    hidden = sorted(set(states) - installed - set(plugins))
    if hidden:
        progress(
            "note: over a token the server does not show the settings of plugins that are not "
            f"installed ({', '.join(hidden)}); saving replaces PluginSettings.Plugins whole, so "
            "any settings they had are dropped (local mode keeps them)"
        )
