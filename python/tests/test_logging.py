"""The hclog JSON handler."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from mattermost_plugin.logging import HclogJSONHandler, hclog_level, install


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
