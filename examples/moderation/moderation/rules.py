"""The moderation policy: the plugin's settings (plugin.json's settings_schema), checked and
normalized, and the banned-word matcher built from them.

``ModerationSettings`` is loaded by the SDK's ``Settings`` descriptor on every
``OnConfigurationChange``. Its ``__post_init__`` normalizes the values (lower case, no ``@`` in
usernames, no duplicates) and rejects what cannot work; the SDK then keeps the previous settings,
or refuses activation when there never were valid ones.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["reject", "flag"]

# The server's rules for the names the settings refer to.
CHANNEL_NAME = re.compile(r"^[a-z0-9]+([a-z0-9\-_]*[a-z0-9]+)?$")
USERNAME = re.compile(r"^[a-z0-9.\-_]{1,64}$")
ROLE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
# Long enough for any real phrase; a longer entry is almost certainly a paste gone wrong.
MAX_WORD_LENGTH = 100


@dataclass(frozen=True)
class ModerationSettings:
    """The settings an admin edits in System Console > Plugins > Moderation.

    Field names match the settings' keys (``banned_words`` is ``BannedWords``).
    """

    banned_words: tuple[str, ...] = ()
    """Words or phrases that are not allowed, matched without regard to case."""
    action: Action = "reject"
    """``reject``: the post is refused; ``flag``: it goes through, marked in its props."""
    match_whole_words: bool = True
    """Match only whole words (``ass`` does not match ``class``)."""
    log_channel: str = ""
    """Channel the bot reports to: a name in the post's team, or ``team/channel``; "" = none."""
    exempt_users: tuple[str, ...] = ()
    """Usernames never moderated."""
    exempt_roles: tuple[str, ...] = ("system_admin",)
    """System or team roles never moderated (``system_admin``, ``team_admin``, ...)."""

    pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    """The compiled matcher (None when there are no banned words)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        words = tuple(w for w in _unique(w.strip().lower() for w in self.banned_words) if w)
        for word in words:
            if len(word) > MAX_WORD_LENGTH:
                problems.append(
                    f"BannedWords: {word[:20]!r}... is longer than {MAX_WORD_LENGTH} characters"
                )
        users = tuple(
            u for u in _unique(u.strip().removeprefix("@").lower() for u in self.exempt_users) if u
        )
        problems += [
            f"ExemptUsers: {u!r} is not a username" for u in users if not USERNAME.match(u)
        ]
        roles = tuple(r for r in _unique(r.strip().lower() for r in self.exempt_roles) if r)
        problems += [
            f"ExemptRoles: {r!r} is not a role name" for r in roles if not ROLE_NAME.match(r)
        ]
        log_channel = self.log_channel.strip().removeprefix("~").lower()
        if log_channel:
            parts = log_channel.split("/")
            if len(parts) > 2 or not all(CHANNEL_NAME.match(p) for p in parts):
                problems.append(
                    f"LogChannel: {self.log_channel!r} is not a channel name "
                    "(like moderation-log, or team-name/moderation-log)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        # The dataclass is frozen so nobody changes the live settings by accident; these are
        # the normalized forms of what was just validated.
        object.__setattr__(self, "banned_words", words)
        object.__setattr__(self, "exempt_users", users)
        object.__setattr__(self, "exempt_roles", roles)
        object.__setattr__(self, "log_channel", log_channel)
        object.__setattr__(self, "pattern", compile_matcher(words, self.match_whole_words))

    def find_banned(self, message: str) -> list[str]:
        """The banned words in ``message``, each once, in the order they first appear."""
        if self.pattern is None:
            return []
        return _unique(m.group(0).lower() for m in self.pattern.finditer(message))

    def log_channel_location(self) -> tuple[str, str]:
        """``(team name or "", channel name)`` of the log channel; "" team = the post's team."""
        team, _, channel = self.log_channel.rpartition("/")
        return team, channel

    def describe(self) -> dict[str, object]:
        """The settings as plain data, for the status page and command."""
        data = dataclasses.asdict(self)
        data.pop("pattern")
        return data


def compile_matcher(words: tuple[str, ...], whole_words: bool) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of ``words``; longest first, so a phrase wins
    over a word it starts with."""
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    if whole_words:
        # Lookarounds rather than \b: they also work for entries that start or end with
        # punctuation (":bademoji:", "c++").
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
    return re.compile(alternatives, re.IGNORECASE)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
