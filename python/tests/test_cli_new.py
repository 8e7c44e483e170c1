"""``mmplug new``: the scaffold has the names filled in, passes ruff and mypy --strict, its
own tests pass (run as a plugin author runs them: pytest in the plugin directory), it bundles,
and nothing is ever overwritten."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_fixtures.elf import write_elf
from cli_fixtures.wheels import fake_index

from mattermost_plugin.cli import main

BIN = Path(sys.executable).parent


def new(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    code = main(["new", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return Path(out.strip())


def test_scaffold_files_and_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = new(tmp_path, capsys, "team_greeter", "--dir", str(tmp_path / "tg"))
    assert target == tmp_path / "tg"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "README.md",
        "plugin.json",
        "plugin.py",
        "pyproject.toml",
        "requirements.txt",
        "tests/test_plugin.py",
    ]
    manifest = json.loads((target / "plugin.json").read_text())
    assert manifest["id"] == "com.example.team_greeter"
    assert manifest["name"] == "Team Greeter"
    assert manifest["version"] == "0.1.0"
    # Both platforms: the ones mmplug bundle builds by default, and mmplug dev on an arm64
    # machine runs the plugin as its linux-arm64 executable.
    assert manifest["server"] == {
        "executables": {
            "linux-amd64": "server/dist/plugin-linux-amd64",
            "linux-arm64": "server/dist/plugin-linux-arm64",
        }
    }
    assert manifest["props"] == {"mmplug": {"entry": "plugin.py"}}
    [setting] = manifest["settings_schema"]["settings"]
    assert (setting["key"], setting["type"], setting["default"]) == ("Greeting", "text", "Hello")
    source = (target / "plugin.py").read_text()
    assert "class TeamGreeter(Plugin):" in source
    assert '@command("team-greeter"' in source
    assert "$" not in source and "$" not in (target / "tests" / "test_plugin.py").read_text()
    requirements = (target / "requirements.txt").read_text().splitlines()
    assert all(line.startswith("#") for line in requirements)
    assert "/team-greeter" in (target / "README.md").read_text()


def test_id_option_and_default_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = new(tmp_path, capsys, "hello", "--id", "org.acme.hello")
    assert target == Path("hello")
    assert json.loads((tmp_path / "hello" / "plugin.json").read_text())["id"] == "org.acme.hello"

    assert main(["new", "other", "--id", "a/b"]) == 2
    assert "--id 'a/b' is not a valid plugin id" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "plugin.py").write_text("# mine\n")
    assert main(["new", "taken", "--dir", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"{target} already exists and is not empty; mmplug new never overwrites files" in err
    assert (target / "plugin.py").read_text() == "# mine\n"
    assert sorted(p.name for p in target.iterdir()) == ["plugin.py"]

    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["new", "x", "--dir", str(a_file)]) == 1
    assert "exists and is not a directory" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["new", "fine", "--dir", str(empty)]) == 0
    assert (empty / "plugin.json").is_file()


def test_scaffold_passes_lint_types_and_its_own_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = new(tmp_path, capsys, "my-plugin", "--dir", str(tmp_path / "my-plugin"))

    def run(*command: str) -> str:
        result = subprocess.run(command, cwd=target, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    run(str(BIN / "ruff"), "check", ".")
    run(str(BIN / "ruff"), "format", "--check", ".")
    run(str(BIN / "mypy"), "--strict", "plugin.py", "tests")
    out = run(str(BIN / "pytest"), "-q", "-p", "no:cacheprovider")
    assert "4 passed" in out


def test_scaffold_bundles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = new(tmp_path, capsys, "my-plugin", "--dir", str(tmp_path / "my-plugin"))
    bridge = write_elf(tmp_path / "bridge")
    index = fake_index(tmp_path / "index")
    args = ["bundle", str(target), "--bridge", f"linux-amd64={bridge}", "--python", "3.12"]
    code = main([*args, "--no-index", "--find-links", str(index)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert Path(out.strip()) == target / "dist" / "com.example.my-plugin-0.1.0.tar.gz"
