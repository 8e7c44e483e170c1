"""The ``mmplug`` command: argument parsing and dispatch. The work is in the other modules."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from . import config as config_mod
from . import deploy as deploy_mod
from .bundle import ALL_PLATFORMS, BundleOptions, build_bundle
from .dev import run_dev
from .errors import CLIError, UsageError
from .manifest import PLATFORMS
from .scaffold import create_plugin
from .server import DEFAULT_LOCAL_SOCKET, connect
from .wheels import DEFAULT_PYTHONS, IndexOptions, parse_python_version

ENVIRONMENT_HELP = f"""\
environment (deploy, enable, disable, logs, config; the variables Go plugin authors use):
  MM_LOCALSOCKETPATH          local-mode socket, tried first (default {DEFAULT_LOCAL_SOCKET})
  MM_SERVICESETTINGS_SITEURL  the server's URL, e.g. https://chat.example.com
  MM_ADMIN_TOKEN              a system admin's personal access token, or
  MM_ADMIN_USERNAME, MM_ADMIN_PASSWORD  a system admin's login
environment (bundle, dev):
  MMPLUG_SOURCE               an mmplug source checkout, to build the bridge and run the
                              harness from when this install carries no programs (not the wheel)
  SOURCE_DATE_EPOCH           the time stamp stored in bundles (default 1980-01-01)
"""


def _platform_bridge(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{value!r} is not PLATFORM=PATH (e.g. linux-arm64=./b)")
    return name, Path(path)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not between 1 and 65535")
    return port


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{number} is not positive")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if number < 0:
        raise argparse.ArgumentTypeError("a wait cannot be negative")
    return number


def _bundle_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bundling")
    group.add_argument(
        "--platform",
        action="append",
        default=[],
        choices=[*sorted(PLATFORMS), ALL_PLATFORMS],
        help="a server platform to bundle (repeatable), or all; default: with --bridge, "
        "linux-amd64 plus every --bridge platform, else every platform mmplug's wheel carries a "
        "bridge for (both), or, installed from a checkout, every platform this machine can "
        "build a bridge for (linux-arm64 needs the aarch64 cross toolchain)",
    )
    group.add_argument(
        "--bridge",
        action="append",
        default=[],
        type=_platform_bridge,
        metavar="PLATFORM=PATH",
        help="a static bridge binary for PLATFORM (repeatable; otherwise the one mmplug's "
        "wheel carries, or, installed from a checkout, one built there)",
    )
    group.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="VERSION",
        help=f"a Python version to bundle wheels for (repeatable; default: "
        f"{', '.join(DEFAULT_PYTHONS)})",
    )
    group.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="where to write the bundle (default: DIR/dist)",
    )
    group.add_argument("--index-url", metavar="URL", help="pip: the package index to use")
    group.add_argument(
        "--extra-index-url",
        action="append",
        default=[],
        metavar="URL",
        help="pip: another package index (repeatable)",
    )
    group.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="PATH_OR_URL",
        help="pip: a directory or page of wheels (repeatable)",
    )
    group.add_argument(
        "--no-index", action="store_true", help="pip: use only --find-links, no package index"
    )
    group.add_argument(
        "--no-import-check",
        dest="check_imports",
        action="store_false",
        help="do not check that the plugin's imports resolve from its files and the wheels",
    )


def _server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local",
        action="store_true",
        help="use only the local-mode socket (fail instead of trying MM_SERVICESETTINGS_SITEURL)",
    )


def _wait_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the plugin to report running (default 60; 0: do not wait)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmplug",
        description="Create, test, bundle and deploy Mattermost plugins written in Python.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mmplug {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=ENVIRONMENT_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    new = command(
        "new",
        "create a plugin directory",
        "Create a plugin: plugin.json, plugin.py (a hook, a slash command, an HTTP route), "
        "requirements.txt, tests/ and a README, with the names filled in. Never overwrites.",
    )
    new.add_argument("name", metavar="NAME", help="the plugin's name, e.g. my-plugin")
    new.add_argument("--id", help="the plugin id (default: com.example.NAME)")
    new.add_argument("--dir", type=Path, help="where to create it (default: ./NAME)")
    new.set_defaults(run=_run_new)

    bundle = command(
        "bundle",
        "build dist/<id>-<version>.tar.gz",
        "Validate plugin.json and build an offline bundle: the bridge for each platform, the "
        "plugin's files, and the SDK plus every dependency as wheels. Prints its path.",
    )
    bundle.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the plugin directory, holding plugin.json (default: .)",
    )
    _bundle_arguments(bundle)
    bundle.set_defaults(run=_run_bundle)

    deploy = command(
        "deploy",
        "upload a bundle and enable it",
        "Upload a bundle to the server (replacing an installed version), enable it and wait "
        "until it runs. Given a plugin directory, bundle it first.",
    )
    deploy.add_argument(
        "target",
        nargs="?",
        type=Path,
        default=Path("."),
        metavar="BUNDLE|DIR",
        help="a .tar.gz bundle, or a plugin directory to bundle (default: .)",
    )
    _server_arguments(deploy)
    _wait_argument(deploy)
    _bundle_arguments(deploy)
    deploy.set_defaults(run=_run_deploy)

    enable = command(
        "enable", "enable an installed plugin", "Enable a plugin and wait until it runs."
    )
    enable.add_argument("plugin_id", metavar="ID", help="the plugin id, e.g. com.example.x")
    _server_arguments(enable)
    _wait_argument(enable)
    enable.set_defaults(run=_run_enable)

    disable = command("disable", "disable a plugin", "Disable a plugin.")
    disable.add_argument("plugin_id", metavar="ID", help="the plugin id, e.g. com.example.x")
    _server_arguments(disable)
    disable.set_defaults(run=_run_disable)

    logs = command(
        "logs",
        "show a plugin's server log lines",
        "Show the plugin's lines among the server's newest log lines (needs "
        "LogSettings.FileJson). With --follow, keep showing new ones.",
    )
    logs.add_argument("plugin_id", metavar="ID", help="the plugin id, e.g. com.example.x")
    logs.add_argument("-f", "--follow", action="store_true", help="keep following the log")
    logs.add_argument(
        "--lines",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="how many of the server's newest log lines to search (default 1000)",
    )
    logs.add_argument("--json", action="store_true", help="print the raw JSON log lines")
    _server_arguments(logs)
    logs.set_defaults(run=_run_logs)

    config = command(
        "config",
        "read or change a plugin's settings",
        "Read or change an installed plugin's settings (PluginSettings.Plugins[ID] of the "
        "server's configuration), as the System Console does.",
    )
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_get = config_commands.add_parser(
        "get",
        help="print the plugin's settings, or one",
        description="Print the plugin's stored settings as a JSON object, or the value of KEY "
        "(text as is, other values as JSON; a key not stored gives the manifest's default).",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_get.add_argument("plugin_id", metavar="ID", help="the plugin id, e.g. com.example.x")
    config_get.add_argument("key", nargs="?", metavar="KEY", help="one setting (any case)")
    config_get.add_argument(
        "--effective",
        action="store_true",
        help="the settings as the plugin reads them: the manifest's defaults, then the stored "
        "values, keys in lower case",
    )
    config_get.add_argument(
        "--json", action="store_true", help="print KEY's value as JSON (text quoted)"
    )
    _server_arguments(config_get)
    config_get.set_defaults(run=_run_config_get)
    config_set = config_commands.add_parser(
        "set",
        help="change some of the plugin's settings",
        description="Change settings of the plugin (PUT /api/v4/config/patch), typed by the "
        "manifest's settings_schema; prints the plugin's settings as saved.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_set.add_argument("plugin_id", metavar="ID", help="the plugin id, e.g. com.example.x")
    config_set.add_argument(
        "assignments", nargs="+", metavar="KEY=VALUE", help="a setting and its new value"
    )
    config_set.add_argument(
        "--no-schema",
        action="store_true",
        help="accept keys the manifest does not declare and type every VALUE as JSON when it "
        "is JSON, else as text",
    )
    _server_arguments(config_set)
    config_set.set_defaults(run=_run_config_set)

    dev = command(
        "dev",
        "run the plugin locally under Mattermost's supervisor",
        "Run the plugin under Mattermost's own plugin supervisor with an in-memory server "
        "(the dev server that comes in mmplug's wheel): reloads on change, prints hooks and API "
        "calls, serves the plugin's HTTP routes on 127.0.0.1:PORT.",
    )
    dev.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the plugin directory, holding plugin.json (default: .)",
    )
    dev.add_argument("--port", type=_port, default=8065, help="the local port (default 8065)")
    dev.set_defaults(run=_run_dev)
    return parser


def _bundle_options(args: argparse.Namespace, plugin_dir: Path) -> BundleOptions:
    bridges: dict[str, Path] = {}
    for name, path in args.bridge:
        if name in bridges:
            raise UsageError(f"--bridge given twice for {name}")
        bridges[name] = path
    pythons = [parse_python_version(v) for v in args.python] or list(DEFAULT_PYTHONS)
    return BundleOptions(
        plugin_dir=plugin_dir,
        platforms=list(args.platform),
        bridges=bridges,
        pythons=list(dict.fromkeys(pythons)),
        output_dir=args.output,
        index=IndexOptions(
            index_url=args.index_url,
            extra_index_urls=tuple(args.extra_index_url),
            find_links=tuple(args.find_links),
            no_index=args.no_index,
        ),
        check_imports=args.check_imports,
    )


def _run_new(args: argparse.Namespace) -> int:
    target = create_plugin(args.name, plugin_id=args.id, directory=args.dir)
    print(target)
    print(
        f"created {target}: next, `cd {target}`, `pytest`, `mmplug dev`, `mmplug bundle`",
        file=sys.stderr,
    )
    return 0


def _run_bundle(args: argparse.Namespace) -> int:
    print(build_bundle(_bundle_options(args, args.dir)))
    return 0


def _run_deploy(args: argparse.Namespace) -> int:
    target: Path = args.target
    client = connect(local=args.local)
    if target.is_dir():
        bundle = build_bundle(_bundle_options(args, target))
    elif target.is_file():
        bundle = target
    else:
        raise CLIError(f"{target} is neither a bundle (.tar.gz) nor a plugin directory")
    deploy_mod.deploy(client, bundle, wait_seconds=args.wait)
    return 0


def _run_enable(args: argparse.Namespace) -> int:
    deploy_mod.enable(connect(local=args.local), args.plugin_id, wait_seconds=args.wait)
    return 0


def _run_disable(args: argparse.Namespace) -> int:
    deploy_mod.disable(connect(local=args.local), args.plugin_id)
    return 0


def _run_logs(args: argparse.Namespace) -> int:
    client = connect(local=args.local)
    # --follow ends with Ctrl-C; that is success.
    with contextlib.suppress(KeyboardInterrupt):
        deploy_mod.logs(
            client, args.plugin_id, lines=args.lines, follow=args.follow, raw_json=args.json
        )
    return 0


def _run_config_get(args: argparse.Namespace) -> int:
    if args.effective and args.key is not None:
        raise UsageError("--effective shows every setting; give no KEY with it")
    config_mod.get(
        connect(local=args.local),
        args.plugin_id,
        args.key,
        effective=args.effective,
        raw_json=args.json,
    )
    return 0


def _run_config_set(args: argparse.Namespace) -> int:
    assignments = config_mod.parse_assignments(args.assignments)
    config_mod.set_(
        connect(local=args.local), args.plugin_id, assignments, no_schema=args.no_schema
    )
    return 0


def _run_dev(args: argparse.Namespace) -> int:
    return run_dev(args.dir, args.port)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``mmplug`` with ``argv`` (default: the process's); returns the exit code:
    0 success, 1 a failure with its reason printed, 2 bad usage."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        code: int = args.run(args)
        return code
    except CLIError as e:
        print(f"mmplug {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"mmplug {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout went away (e.g. `mmplug logs ID | head`); nothing left to report to.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
