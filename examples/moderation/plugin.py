"""Moderation: keeps banned words out of a Mattermost server's channels.

Posts and edits containing a banned word are rejected or flagged (settings in plugin.json),
each offence is a strike for the author (counted in the KV store), and a bot reports to a log
channel. ``/moderation`` shows the policy and strikes and lets system admins reset them; the
plugin's HTTP page shows the same to admins. README.md describes the behaviour in full.

Hooks on the posting path are ``async def``: they run on the event loop, and the API calls they
make for a post with a banned word (author, channel, KV, notices) do not hold a thread each.
The admin page is a plain sync handler (it runs in a worker thread), as are the commands that
only read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mattermost_plugin import (
    Channel,
    CommandCall,
    CommandError,
    HookName,
    HTTPRequest,
    HTTPResponseWriter,
    KVConflictError,
    KVDecodeError,
    NotFoundError,
    NotImplementedAPIError,
    Plugin,
    PluginAPIError,
    PluginContext,
    Post,
    Settings,
    User,
    command,
    ensure_bot,
    hook,
    run_plugin,
)
from moderation.page import status_page, strike_rows
from moderation.rules import ModerationSettings
from moderation.strikes import StrikeRecord, add_strike, all_strikes, reset_strikes, strikes_of

PLUGIN_ID = "com.mmplug.moderation"  # plugin.json
BOT_USERNAME = "moderation-bot"
ADMIN_ROLE = "system_admin"
# Keys this plugin sets in a flagged post's props.
FLAG_PROP = "moderation_flagged"
WORDS_PROP = "moderation_words"
PAST_TENSE = {"reject": "rejected", "flag": "flagged"}


@dataclass(frozen=True)
class Offence:
    """A post that breaks the policy: the banned words it contains, and what is known of where
    it was posted and by whom (None when the server could not tell)."""

    words: list[str]
    author: User | None
    channel: Channel | None


def is_system_admin(user: User) -> bool:
    return ADMIN_ROLE in user.roles.split()


def quoted(words: list[str]) -> str:
    return ", ".join(f"`{w}`" for w in words)


def clear_flag(post: Post) -> None:
    for key in (FLAG_PROP, WORDS_PROP):
        if key in post.props:
            del post.props[key]


class Moderation(Plugin):
    settings = Settings(ModerationSettings)

    def __init__(self) -> None:
        super().__init__()
        self.bot_id = ""

    # --- lifecycle -----------------------------------------------------------------------

    @hook(HookName.OnConfigurationChange)
    def on_configuration_change(self) -> None:
        # The SDK has loaded and checked the new settings before this runs; an invalid
        # configuration never gets here (the previous settings stay, the error is logged).
        s = self.settings
        self.logger.info(
            "moderation settings loaded: %d banned words, action %s, log channel %s",
            len(s.banned_words),
            s.action,
            s.log_channel or "(none)",
        )

    @hook(HookName.OnActivate)
    async def on_activate(self) -> None:
        # /moderation is registered by @command before this runs.
        self.bot_id = await ensure_bot(
            self.aapi,
            BOT_USERNAME,
            display_name="Moderation",
            description="Reports posts with banned words (the Moderation plugin).",
        )
        self.logger.info("moderation activated, bot %s", self.bot_id)

    # --- posts and edits ---------------------------------------------------------------

    @hook(HookName.MessageWillBePosted)
    async def check_post(self, context: PluginContext, post: Post) -> tuple[Post | None, str]:
        settings = self.settings  # one snapshot, even if an admin saves new settings meanwhile
        offence = await self.judge(settings, post)
        if offence is None:
            return None, ""  # unchanged
        await self.record(settings, offence, post, offence.words, edit=False)
        return await self.enforce(settings, offence, post)

    @hook(HookName.MessageWillBeUpdated)
    async def check_edit(
        self, context: PluginContext, new_post: Post, old_post: Post
    ) -> tuple[Post | None, str]:
        # The server saves exactly the post returned here, so a clean edit of a flagged post
        # can drop the flag.
        settings = self.settings
        offence = await self.judge(settings, new_post)
        if offence is None:
            clear_flag(new_post)
            return new_post, ""
        # Only words the edit brings in count as a new strike: fixing a typo in a post that
        # was flagged before is not a second offence.
        before = set(settings.find_banned(old_post.message))
        introduced = [w for w in offence.words if w not in before]
        if introduced:
            await self.record(settings, offence, new_post, introduced, edit=True)
        return await self.enforce(settings, offence, new_post)

    async def judge(self, settings: ModerationSettings, post: Post) -> Offence | None:
        """The offence ``post`` commits, or None if it may pass as it is."""
        if post.user_id == self.bot_id or post.type.startswith("system_"):
            return None  # our own notices quote banned words; system messages are the server's
        words = settings.find_banned(post.message)
        if not words:
            return None
        author = await self.lookup_user(post.user_id)
        channel = await self.lookup_channel(post.channel_id)
        if await self.is_exempt(settings, author, channel):
            return None
        return Offence(words, author, channel)

    async def lookup_user(self, user_id: str) -> User | None:
        try:
            return await self.aapi.get_user(user_id)
        except PluginAPIError as e:
            # Moderation fails closed: an author the server cannot describe is not exempt.
            self.logger.warning("moderation: cannot look up user %s: %s", user_id, e)
            return None

    async def lookup_channel(self, channel_id: str) -> Channel | None:
        try:
            return await self.aapi.get_channel(channel_id)
        except PluginAPIError as e:
            self.logger.warning("moderation: cannot look up channel %s: %s", channel_id, e)
            return None

    async def is_exempt(
        self, settings: ModerationSettings, author: User | None, channel: Channel | None
    ) -> bool:
        if author is None:
            return False
        if author.username in settings.exempt_users:
            return True
        exempt_roles = set(settings.exempt_roles)
        if exempt_roles & set(author.roles.split()):
            return True
        # Team roles (team_admin, or a scheme's own roles) need the team membership; system
        # roles were all in the user's roles above.
        if not channel or not channel.team_id or all(r.startswith("system_") for r in exempt_roles):
            return False
        try:
            member = await self.aapi.get_team_member(channel.team_id, author.id)
        except PluginAPIError:
            return False
        team_roles = set(member.roles.split())
        if member.scheme_admin:
            team_roles.add("team_admin")
        return bool(exempt_roles & team_roles)

    async def record(
        self,
        settings: ModerationSettings,
        offence: Offence,
        post: Post,
        words: list[str],
        *,
        edit: bool,
    ) -> None:
        """Count a strike and report it to the log channel. Neither failing stops the post from
        being rejected or flagged: the failure is logged instead."""
        strike: StrikeRecord | None = None
        try:
            strike = await add_strike(self.akv_store, post.user_id)
        except (PluginAPIError, KVConflictError, KVDecodeError) as e:
            self.logger.error("moderation: could not count a strike for %s: %s", post.user_id, e)
        verb = PAST_TENSE[settings.action].capitalize()
        what = "an edit" if edit else "a message"
        who = f"@{offence.author.username}" if offence.author else f"user {post.user_id}"
        where = f"~{offence.channel.name}" if offence.channel else f"channel {post.channel_id}"
        count = f"strike {strike.count}" if strike else "strike not counted"
        team_id = offence.channel.team_id if offence.channel else ""
        await self.notify(
            settings,
            team_id,
            f"{verb} {what} by {who} in {where}: banned {quoted(words)} ({count}).",
        )

    async def enforce(
        self, settings: ModerationSettings, offence: Offence, post: Post
    ) -> tuple[Post | None, str]:
        if settings.action == "flag":
            post.props[FLAG_PROP] = True
            post.props[WORDS_PROP] = offence.words
            return post, ""
        reason = f"Your message contains words that are not allowed here: {quoted(offence.words)}."
        try:
            # The rejected post never appears; this tells its author why.
            await self.aapi.send_ephemeral_post(
                post.user_id, Post(channel_id=post.channel_id, user_id=self.bot_id, message=reason)
            )
        except PluginAPIError as e:
            self.logger.warning("moderation: could not tell %s why: %s", post.user_id, e)
        return None, reason

    # --- the log channel -----------------------------------------------------------------

    async def log_channel_id(self, settings: ModerationSettings, team_id: str) -> str:
        """The log channel's id for an event in ``team_id`` ("" when there is none)."""
        team_name, channel_name = settings.log_channel_location()
        if not channel_name:
            return ""
        try:
            if team_name:
                team_id = (await self.aapi.get_team_by_name(team_name)).id
            elif not team_id:
                return ""  # a direct or group message: no team to look in
            return (await self.aapi.get_channel_by_name(team_id, channel_name, False)).id
        except NotFoundError:
            self.logger.warning(
                "moderation: the log channel %r (setting LogChannel) does not exist in team %s",
                settings.log_channel,
                team_name or team_id,
            )
            return ""

    async def notify(self, settings: ModerationSettings, team_id: str, message: str) -> None:
        """Post ``message`` as the bot in the log channel, if there is one."""
        try:
            channel_id = await self.log_channel_id(settings, team_id)
            if channel_id:
                await self.aapi.create_post(
                    Post(channel_id=channel_id, user_id=self.bot_id, message=message)
                )
        except PluginAPIError as e:
            self.logger.error("moderation: could not post to the log channel: %s", e)

    # --- /moderation -------------------------------------------------------------------

    @command("moderation status", help="Show the moderation policy and how many users have strikes")
    def status(self, call: CommandCall) -> str:
        s = self.settings
        records = all_strikes(self.kv_store)
        exempt = [f"@{u}" for u in s.exempt_users] + list(s.exempt_roles)
        return "\n".join(
            [
                f"**Moderation**: posts with banned words are **{PAST_TENSE[s.action]}**.",
                f"- Banned words: {len(s.banned_words)}"
                + (" (whole words only)" if s.match_whole_words else " (anywhere in a word)"),
                f"- Log channel: {'~' + s.log_channel if s.log_channel else 'none'}",
                f"- Exempt: {', '.join(exempt) or 'nobody'}",
                f"- Users with strikes: {len(records)} "
                f"({sum(r.count for r in records)} strikes in all)",
            ]
        )

    @command("moderation words", help="List the banned words")
    def words(self, call: CommandCall) -> str:
        words = self.settings.banned_words
        if not words:
            return "No words are banned (System Console > Plugins > Moderation)."
        return f"Banned words ({len(words)}): {quoted(list(words))}"

    @command(
        "moderation strikes",
        hint="[@username]",
        help="Show a user's strikes (yours without a name; others' for system admins)",
    )
    async def strikes(self, call: CommandCall) -> str:
        caller = await self.aapi.get_user(call.user_id)
        target = await self.target_user(call, default=caller)
        if target.id != caller.id and not is_system_admin(caller):
            raise CommandError("Only system admins can see other users' strikes.")
        record = await strikes_of(self.akv_store, target.id)
        if record.count == 0:
            return f"@{target.username} has no strikes."
        plural = "strike" if record.count == 1 else "strikes"
        return f"@{target.username} has {record.count} {plural}."

    @command("moderation reset", hint="@username", help="Clear a user's strikes (system admins)")
    async def reset(self, call: CommandCall) -> str:
        caller = await self.aapi.get_user(call.user_id)
        if not is_system_admin(caller):
            raise CommandError("Only system admins can reset strikes.")
        target = await self.target_user(call, default=None)
        previous = await reset_strikes(self.akv_store, target.id)
        await self.notify(
            self.settings,
            call.team_id,
            f"@{caller.username} reset the strikes of @{target.username} (had {previous}).",
        )
        return f"Reset the strikes of @{target.username} (had {previous})."

    async def target_user(self, call: CommandCall, default: User | None) -> User:
        """The user named by the command's argument (``@name`` or ``name``)."""
        argv = call.argv
        usage = f"Usage: /moderation {' '.join(call.path)} " + (
            "[@username]" if default else "@username"
        )
        if len(argv) > 1 or (not argv and default is None):
            raise CommandError(usage)
        if not argv:
            assert default is not None
            return default
        name = argv[0].removeprefix("@").lower()
        try:
            return await self.aapi.get_user_by_username(name)
        except NotFoundError:
            raise CommandError(f"There is no user @{name}.") from None

    # --- HTTP: /plugins/com.mmplug.moderation/ ---------------------------------------------

    @hook(HookName.ServeHTTP)
    def serve_http(self, context: PluginContext, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        page = {"": "html", "/": "html", "/api/strikes": "json"}.get(r.path)
        if page is None:
            return text_response(w, 404, "not found")
        if r.method != "GET":
            w.headers["Allow"] = ["GET"]
            return text_response(w, 405, "only GET is allowed here")
        # The server sets Mattermost-User-Id for a logged-in session only (and drops any the
        # client sends), so an empty one is an anonymous request.
        if not r.user_id:
            return text_response(w, 401, "log in to Mattermost first")
        try:
            user = self.api.get_user(r.user_id)
        except NotFoundError:
            return text_response(w, 401, "log in to Mattermost first")
        if not is_system_admin(user):
            return text_response(w, 403, "only system admins can see the moderation status")
        records = all_strikes(self.kv_store)
        usernames = self.usernames([r.user_id for r in records])
        w.headers["Cache-Control"] = ["no-store"]
        if page == "json":
            w.headers["Content-Type"] = ["application/json"]
            w.write(json.dumps({"strikes": strike_rows(records, usernames)}))
        else:
            w.headers["Content-Type"] = ["text/html; charset=utf-8"]
            w.write(status_page(PLUGIN_ID, self.settings, records, usernames))

    def usernames(self, user_ids: list[str]) -> dict[str, str]:
        """Usernames by id; users the server no longer has are left out."""
        if not user_ids:
            return {}
        try:
            return {u.id: u.username for u in self.api.get_users_by_ids(user_ids)}
        except NotImplementedAPIError:
            pass  # GetUsersByIds is new in 9.8: one call per user on older servers
        names = {}
        for user_id in user_ids:
            try:
                names[user_id] = self.api.get_user(user_id).username
            except NotFoundError:
                continue
        return names


def text_response(w: HTTPResponseWriter, status: int, text: str) -> None:
    w.headers["Content-Type"] = ["text/plain; charset=utf-8"]
    w.write_header(status)
    w.write(text)


if __name__ == "__main__":
    run_plugin(Moderation)
