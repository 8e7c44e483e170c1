"""``mmplug bundle`` on plugins written for Mattermost's own Python SDK (docs/upstream.md): the
manifest forms its supervisor accepts, its requirements file, its SDK requirement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_fixtures.elf import write_elf
from cli_fixtures.wheels import fake_index
from test_cli_bundle import PLUGIN_ID, bundle_args, members, read_member, run

from mattermost_plugin.cli.manifest import load_manifest


@pytest.fixture(scope="module")
def wheel_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_index(tmp_path_factory.mktemp("index"))


@pytest.fixture
def bridge(tmp_path: Path) -> Path:
    return write_elf(tmp_path / "bridges" / "amd64")


def upstream_plugin(root: Path, server: dict[str, Any], files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    document = {
        "id": PLUGIN_ID,
        "name": "Upstream",
        "version": "0.1.0",
        "min_server_version": "9.5.0",
        "server": server,
    }
    (root / "plugin.json").write_text(json.dumps(document, indent=2))
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


PLUGIN_PY = "from mattermost_plugin import Plugin\n\n\nclass P(Plugin):\n    pass\n"


def test_the_guides_manifest_bundles_with_its_requirements(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = upstream_plugin(
        tmp_path / "p",
        {
            "executable": "server/plugin.py",
            "runtime": "python",
            "python_version": "3.9",
            "python": {
                "dependency_mode": "venv",
                "venv_path": "server/venv",
                "requirements_path": "server/requirements.txt",
            },
        },
        {
            "server/plugin.py": PLUGIN_PY + "import tinydep\n",
            "server/requirements.txt": "mattermost-plugin-sdk>=0.1.0  # the SDK\ntinydep==1.0\n",
            "server/venv/bin/python": "not bundled",
        },
    )
    code, out, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 0, err
    assert "1 requirement(s) on Mattermost's own Python SDK left out" in err
    bundle = Path(out.strip())
    found = members(bundle)
    assert f"{PLUGIN_ID}/server/plugin.py" in found
    assert f"{PLUGIN_ID}/python/wheels/tinydep-1.0-py3-none-any.whl" in found
    assert not any("/venv/" in name for name in found)

    manifest = json.loads(read_member(bundle, f"{PLUGIN_ID}/plugin.json"))
    # What a server running Python plugins itself looks at is gone: it starts the bridge.
    assert manifest["server"] == {
        "python_version": "3.9",
        "executables": {"linux-amd64": "server/dist/plugin-linux-amd64"},
    }
    assert manifest["props"] == {"mmplug": {"entry": "server/plugin.py"}}
    index = json.loads(read_member(bundle, f"{PLUGIN_ID}/python/wheels/index.json"))
    assert index["requirements"][-1] == "tinydep==1.0"
    assert not any("mattermost-plugin-sdk" in r for r in index["requirements"])


def test_the_examples_entry_point_form(tmp_path: Path) -> None:
    plugin = upstream_plugin(
        tmp_path / "p",
        {"runtime": "python", "python_version": ">=3.9", "python": {"entry_point": "main.py"}},
        {"main.py": PLUGIN_PY},
    )
    manifest = load_manifest(plugin)
    assert (manifest.entry, manifest.requirements) == ("main.py", "requirements.txt")
    shipped = manifest.with_executables([])
    assert "python" not in shipped["server"] and "runtime" not in shipped["server"]
    assert shipped["props"]["mmplug"]["entry"] == "main.py"


def test_props_mmplug_entry_wins_and_plain_manifests_ship_unchanged(tmp_path: Path) -> None:
    plugin = upstream_plugin(
        tmp_path / "p",
        {"executable": "other.py"},
        {"plugin.py": PLUGIN_PY, "other.py": PLUGIN_PY},
    )
    document = json.loads((plugin / "plugin.json").read_text())
    document["props"] = {"mmplug": {"entry": "plugin.py"}}
    (plugin / "plugin.json").write_text(json.dumps(document))
    assert load_manifest(plugin).entry == "plugin.py"
    plain = upstream_plugin(tmp_path / "q", {}, {"plugin.py": PLUGIN_PY})
    assert "props" not in load_manifest(plain).with_executables([])


@pytest.mark.parametrize(
    ("server", "files", "message"),
    [
        ({"runtime": "node"}, {}, "\"server.runtime\" is 'node'; mmplug bundles Python plugins"),
        (
            {"executable": "server/plugin.py"},
            {},
            "\"server.executable\" 'server/plugin.py' does not exist",
        ),
        (
            {"python": {"entry_point": "../x.py"}},
            {},
            "\"server.python.entry_point\" '../x.py' must be a relative path inside",
        ),
        (
            {"python": {"requirements_path": "reqs.txt"}},
            {},
            "\"server.python.requirements_path\" 'reqs.txt' does not exist",
        ),
        ({"python": {"dependency_mode": "conda"}}, {}, "one of system, venv, bundled"),
        ({"python": {"venvpath": "x"}}, {}, '"server.python" has unknown keys venvpath'),
        ({"python": "yes"}, {}, '"server.python" must be an object'),
        ({"executable": "plugin"}, {}, '"server.executable" is not used by mmplug bundles'),
    ],
)
def test_upstream_manifest_problems_are_named(
    tmp_path: Path,
    bridge: Path,
    wheel_index: Path,
    capsys: pytest.CaptureFixture[str],
    server: dict[str, Any],
    files: dict[str, str],
    message: str,
) -> None:
    plugin = upstream_plugin(tmp_path / "p", server, {"plugin.py": PLUGIN_PY, **files})
    code, out, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 1
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_requirements_naming_other_files_keep_resolving(
    tmp_path: Path, bridge: Path, wheel_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = upstream_plugin(
        tmp_path / "p",
        {"runtime": "python", "python": {"requirements_path": "req/main.txt"}},
        {
            "plugin.py": PLUGIN_PY,
            "req/main.txt": "mattermost-plugin-sdk\ntinydep\n-c pins.txt\n",
            "req/pins.txt": "tinydep==1.0\n",
        },
    )
    code, out, err = run(capsys, bundle_args(plugin, bridge, wheel_index))
    assert code == 0, err
    assert f"{PLUGIN_ID}/python/wheels/tinydep-1.0-py3-none-any.whl" in members(Path(out.strip()))
