"""PluginAPIError: the fields a plugin's error carries back to the server, and what the server
shows of them.

The server translates an AppError before a user sees it (model.AppError.Translate): unless
SkipTranslation is set, Message becomes the translation of Id, and an id the i18n bundle does
not know becomes the message itself. ``server_translate`` below is that function with the
server's bundle, which holds no plugin's ids.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mattermost_plugin import NotFoundError, PluginAPIError
from mattermost_plugin._dispatch import app_error_fields
from mattermost_plugin.errors import ErrorKind, error_from_app_error

# A few ids the server's i18n bundle (server/i18n/en.json) holds.
SERVER_BUNDLE = {"api.context.404.app_error": "Sorry, we could not find the page."}


def server_translate(fields: dict[str, Any]) -> str:
    """The message a user reads: model.AppError.Translate with the server's bundle."""
    if fields["skip_translation"]:
        return str(fields["message"])
    error_id = str(fields["id"])
    return SERVER_BUNDLE.get(error_id, error_id)  # go-i18n answers an unknown id with itself


def test_a_plugins_error_reaches_the_user_with_its_message() -> None:
    # examples/hello's /hello fail
    error = PluginAPIError(
        "hello failed on purpose",
        id="hello.fail",
        detailed_error="details",
        status_code=418,
        where="Hello.ExecuteCommand",
    )
    fields = app_error_fields(error, "ExecuteCommand")
    assert server_translate(fields) == "hello failed on purpose"
    # Every wire field stays as given.
    assert fields == {
        "id": "hello.fail",
        "message": "hello failed on purpose",
        "detailed_error": "details",
        "request_id": "",
        "status_code": 418,
        "where": "Hello.ExecuteCommand",
        "skip_translation": True,
        "kind": int(ErrorKind.APP_ERROR),
        "code": 0,
    }


@pytest.mark.parametrize("cls", [PluginAPIError, NotFoundError])
def test_skip_translation_defaults_to_true_and_can_be_turned_off(
    cls: type[PluginAPIError],
) -> None:
    assert cls("x", id="my.plugin.x").skip_translation is True
    # A plugin using one of the server's own ids may ask for the server's translation.
    error = cls("ignored", id="api.context.404.app_error", skip_translation=False)
    assert error.to_fields()["skip_translation"] is False
    assert server_translate(error.to_fields()) == "Sorry, we could not find the page."


def test_errors_from_the_server_keep_the_servers_skip_translation() -> None:
    for skip in (False, True):
        wire = SimpleNamespace(
            id="app.user.missing.app_error",
            message="User not found.",
            detailed_error="",
            request_id="r1",
            status_code=404,
            where="GetUser",
            skip_translation=skip,
            kind=0,
            code=0,
        )
        error = error_from_app_error(wire, method="GetUser")
        assert isinstance(error, NotFoundError)
        assert error.skip_translation is skip
        # Re-raised by the plugin, it goes back exactly as it came.
        fields = app_error_fields(error, "ExecuteCommand")
        assert fields["skip_translation"] is skip
        assert (fields["id"], fields["message"], fields["where"]) == (
            "app.user.missing.app_error",
            "User not found.",
            "GetUser",
        )
