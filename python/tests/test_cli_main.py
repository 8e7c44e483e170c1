"""The ``mmplug`` entry point: help for every command, the version, exit codes for usage
errors, and the installed console script itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mattermost_plugin import __version__
from mattermost_plugin.cli import main

COMMANDS = ["new", "bundle", "deploy", "enable", "disable", "logs", "dev"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mmplug {command} ")
    assert "MM_SERVICESETTINGS_SITEURL" in out  # the environment is listed everywhere


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command} " in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mmplug {__version__}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["enable"], "the following arguments are required: ID"),
        (["logs", "x", "--lines", "0"], "argument --lines: 0 is not positive"),
        (["deploy", "--wait", "-1"], "argument --wait: a wait cannot be negative"),
        (["new", "1abc"], "plugin name '1abc' must start with a letter"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_the_console_script_and_module_run(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "mmplug"
    assert script.is_file(), "pip install -e python registers the mmplug console script"
    for command in ([str(script)], [sys.executable, "-m", "mattermost_plugin.cli"]):
        result = subprocess.run(
            [*command, "new", "smoke", "--dir", str(tmp_path / "smoke")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{tmp_path / 'smoke'}\n"
        shutil.rmtree(tmp_path / "smoke")

        result = subprocess.run(
            [*command, "bundle", str(tmp_path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 1
        assert result.stderr == (
            f"mmplug bundle: error: no plugin.json in {tmp_path}: is this a plugin directory? "
            "(`mmplug new NAME` creates one)\n"
        )
