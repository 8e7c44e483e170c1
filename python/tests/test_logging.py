"""The hclog JSON handler."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from mattermost_plugin.logging import HclogJSONHandler, ServerLogHandler, hclog_level, install


def make_logger(stream: io.StringIO) -> logging.Logger:
    logger = logging.getLogger("mattermost_plugin.test.hclog")
    logger.handlers[:] = [HclogJSONHandler(stream)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def test_one_json_object_per_line_with_hclog_keys() -> None:
    out = io.StringIO()
    log = make_logger(out)
    log.info("activated %s", "ok", extra={"user_id": "u1", "count": 3, "obj": object()})
    log.warning("multi\nline")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(x) for x in lines)
    assert first["@level"] == "info"
    assert first["@message"] == "activated ok"
    assert first["@module"] == "python"
    assert first["logger"] == "mattermost_plugin.test.hclog"
    assert first["user_id"] == "u1" and first["count"] == 3
    assert first["obj"].startswith("<object object")  # unserialisable extras become text
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)", first["@timestamp"]
    )
    assert second["@level"] == "warn" and second["@message"] == "multi\nline"


def test_exceptions_are_a_field() -> None:
    out = io.StringIO()
    log = make_logger(out)
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("failed")
    entry = json.loads(out.getvalue())
    assert entry["@level"] == "error"
    assert "Traceback" in entry["exception"]
    assert "ValueError: bad" in entry["exception"]


@pytest.mark.parametrize(
    ("level", "name"),
    [(5, "trace"), (10, "debug"), (20, "info"), (30, "warn"), (40, "error"), (50, "error")],
)
def test_levels(level: int, name: str) -> None:
    assert hclog_level(level) == name


def test_install_routes_root_logger_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        root.addHandler(logging.StreamHandler())
        install(logging.INFO)
        install(logging.INFO)  # idempotent: one handler
        assert len(root.handlers) == 1
        logging.getLogger("mattermost_plugin.plugin.x").info("to the server log")
        logging.getLogger("x").debug("filtered")
        captured = capsys.readouterr()
        assert captured.out == ""
        (line,) = captured.err.splitlines()
        assert json.loads(line)["@message"] == "to the server log"
    finally:
        logging.captureWarnings(False)
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])


class FakeLogAPI:
    def __init__(self, fail: bool = False) -> None:
        self.lines: list[tuple[str, str, list[str]]] = []
        self.fail = fail

    def _log(self, level: str, msg: str, key_value_pairs: object = ()) -> None:
        if self.fail:
            raise ConnectionError("server gone")
        self.lines.append((level, msg, list(key_value_pairs)))  # type: ignore[call-overload]

    def log_debug(self, msg: str, key_value_pairs: object = ()) -> None:
        self._log("debug", msg, key_value_pairs)

    def log_info(self, msg: str, key_value_pairs: object = ()) -> None:
        self._log("info", msg, key_value_pairs)

    def log_warn(self, msg: str, key_value_pairs: object = ()) -> None:
        self._log("warn", msg, key_value_pairs)

    def log_error(self, msg: str, key_value_pairs: object = ()) -> None:
        self._log("error", msg, key_value_pairs)


def server_logger(name: str) -> tuple[logging.Logger, io.StringIO, ServerLogHandler]:
    stream = io.StringIO()
    handler = ServerLogHandler(HclogJSONHandler(stream))
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream, handler


def test_records_go_through_the_api_once_it_is_open_in_order() -> None:
    logger, stream, handler = server_logger("mattermost_plugin.plugin.com.example.x")
    logger.info("before activation")
    api = FakeLogAPI()
    handler.open(api)
    for i in range(50):
        logger.info("line %d", i, extra={"user_id": "u1"})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    handler.close_api()
    # Before the API opened: stderr, as an hclog line.
    assert json.loads(stream.getvalue())["@message"] == "before activation"
    assert [m for _, m, _ in api.lines[:50]] == [f"line {i}" for i in range(50)]
    level, msg, pairs = api.lines[0]
    assert (level, pairs) == ("info", ["logger", logger.name, "user_id", "u1"])
    level, msg, pairs = api.lines[50]
    assert (level, msg) == ("error", "failed")
    assert pairs[2] == "error" and "ValueError: boom" in pairs[3]


def test_the_sdks_own_loggers_stay_on_stderr() -> None:
    logger, stream, handler = server_logger("mattermost_plugin.runtime")
    api = FakeLogAPI()
    handler.open(api)
    logger.warning("internal")
    handler.close_api()
    assert api.lines == []
    assert json.loads(stream.getvalue())["@message"] == "internal"


def test_a_line_the_server_cannot_take_goes_to_stderr() -> None:
    logger, stream, handler = server_logger("my_plugin")
    handler.open(FakeLogAPI(fail=True))
    logger.error("kept")
    handler.close_api()
    entry = json.loads(stream.getvalue())
    assert entry["@message"] == "kept" and entry["log_api_error"] == "server gone"
