"""Remind: ``/remind me in 10m to water the plants``, delivered by a bot when it is due.

* ``/remind me in <when> to <what>`` sets a reminder (``10m``, ``2h``, ``1h30m``, ``3 days``);
  ``/remind new`` opens a dialog to write one; ``/remind list`` shows yours;
  ``/remind cancel <id>`` drops one.
* Each reminder is a persisted one-shot job (``self.jobs.schedule_once``): it survives plugin
  and server restarts, and with several servers it is delivered once.
* When it is due, the bot sends it by direct message with **Snooze 10m**, **Snooze 1h** and
  **Done** buttons; a click updates that message.

Every reminder is keyed by its owner's user id (``remind_<user id>_<id>``), and the owner of
anything a click or a dialog asks for is the user the server names in ``Mattermost-User-Id``
(``request.user_id``), never a value from the button's context or the request body: a
forged button can only ever touch its clicker's own reminders.
"""

from __future__ import annotations

import datetime
import re
import secrets
import zoneinfo
from collections.abc import Mapping

from mattermost_plugin import (
    ActionRequest,
    ActionResponse,
    Attachment,
    Button,
    CommandCall,
    CommandError,
    DialogResponse,
    DialogSubmission,
    HookName,
    InteractiveDialog,
    JobExistsError,
    OneShotJob,
    Plugin,
    Post,
    TextElement,
    action,
    attach,
    command,
    dialog,
    ensure_bot,
    field_errors,
    hook,
    one_shot,
    open_dialog,
    run_plugin,
    update_post,
)

PLUGIN_ID = "com.mmplug.remind"  # plugin.json
BOT_USERNAME = "remind-bot"
KEY_PREFIX = "remind_"
MAX_TEXT = 1000
MAX_PER_USER = 50
MAX_DELAY = datetime.timedelta(days=365)
SNOOZE_CHOICES = (10, 60)  # minutes, one button each

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_PART = re.compile(r"(\d+)\s*([a-z]+)")
_SET = re.compile(r"^in\s+(?P<when>.+?)\s+to\s+(?P<what>.+)$", re.IGNORECASE | re.DOTALL)

REMINDER_PREFIX = "⏰ Reminder: "
NOT_MINE = "That button is not one of mine."
USAGE = "Usage: `/remind me in 10m to water the plants` (units: s, m, h, d; e.g. `1h30m`)"


def parse_delay(text: str) -> datetime.timedelta:
    """``10m``, ``1h30m``, ``2 hours``, ``1 day 2 hours``: a delay; ValueError otherwise."""
    spoken = text.strip().lower()
    total, end = 0, 0
    for match in _PART.finditer(spoken):
        if spoken[end : match.start()].strip(" ,"):
            break
        unit = _UNITS.get(match.group(2))
        if unit is None:
            raise ValueError(f"`{match.group(2)}` is not a unit (use s, m, h or d)")
        total += int(match.group(1)) * unit
        end = match.end()
    if end == 0 or spoken[end:].strip():
        raise ValueError(f"`{text.strip()}` is not a delay like 10m, 2h or 1h30m")
    delay = datetime.timedelta(seconds=total)
    if not delay:
        raise ValueError("a reminder needs a delay of at least one second")
    if delay > MAX_DELAY:
        raise ValueError("a reminder can be at most 365 days ahead")
    return delay


def describe(delay: datetime.timedelta) -> str:
    """``1h 30m`` for a delay (whole seconds; the biggest units first)."""
    seconds = int(delay.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts) or "now"


def user_zone(timezone: Mapping[str, str]) -> datetime.tzinfo:
    """The time zone a user's Mattermost settings name (``User.timezone``: automatic or
    manual), UTC when they name none or one this machine does not know."""
    automatic = timezone.get("useAutomaticTimezone", "true") == "true"
    name = timezone.get("automaticTimezone" if automatic else "manualTimezone", "")
    try:
        return zoneinfo.ZoneInfo(name) if name else datetime.timezone.utc
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return datetime.timezone.utc


def local_time(when: datetime.datetime, zone: datetime.tzinfo) -> str:
    """``2026-12-07 14:05 CET``: when, in the user's time zone."""
    local = when.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or 'UTC'}"


def job_key(user_id: str, reminder_id: str) -> str:
    return f"{KEY_PREFIX}{user_id}_{reminder_id}"


class Remind(Plugin):
    bot_id = ""

    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        self.bot_id = ensure_bot(
            self.api, BOT_USERNAME, display_name="Reminders", description="Sends /remind reminders"
        )

    # --- setting reminders ----------------------------------------------------------------

    def add_reminder(self, user_id: str, delay: datetime.timedelta, text: str) -> OneShotJob:
        """Schedule a reminder for ``user_id``; CommandError for what the user should fix."""
        text = text.strip()
        if not text:
            raise CommandError("What should I remind you of? " + USAGE)
        if len(text) > MAX_TEXT:
            raise CommandError(f"A reminder is at most {MAX_TEXT} characters.")
        if len(self.jobs.list(f"{KEY_PREFIX}{user_id}_")) >= MAX_PER_USER:
            raise CommandError(f"You have {MAX_PER_USER} reminders already; cancel some first.")
        while True:
            reminder_id = secrets.token_hex(4)
            try:
                return self.jobs.schedule_once(
                    job_key(user_id, reminder_id), delay, {"user_id": user_id, "text": text}
                )
            except JobExistsError:
                continue  # a clash of random ids: draw another

    @command("remind me", hint="in <when> to <what>", help="Set a reminder")
    def remind_me(self, call: CommandCall) -> str:
        match = _SET.match(call.text)
        if match is None:
            raise CommandError(USAGE)
        try:
            delay = parse_delay(match.group("when"))
        except ValueError as e:
            raise CommandError(f"{e}. {USAGE}") from None
        job = self.add_reminder(call.user_id, delay, match.group("what"))
        at = local_time(job.run_at, self.zone_of(call.user_id))
        return f"I will remind you in {describe(delay)} (at {at})."

    def zone_of(self, user_id: str) -> datetime.tzinfo:
        """The user's time zone, for the times the answers show."""
        return user_zone(dict(self.api.get_user(user_id).timezone))

    @command("remind new", help="Write a reminder in a dialog")
    def remind_new(self, call: CommandCall) -> None:
        open_dialog(
            self.api,
            call.args.trigger_id,
            "new",
            InteractiveDialog(
                title="New reminder",
                submit_label="Remind me",
                elements=[
                    TextElement("text", "Remind me to", max_length=MAX_TEXT),
                    TextElement("when", "In", default="10m", help_text="e.g. 10m, 2h, 1h30m, 3d"),
                ],
            ),
        )

    @dialog("new")
    def new_from_dialog(self, submission: DialogSubmission) -> DialogResponse | None:
        text = submission.values.get("text")
        when = submission.values.get("when")
        if not isinstance(text, str) or not text.strip():
            return field_errors(text="What should I remind you of?")
        try:
            delay = parse_delay(when if isinstance(when, str) else "")
        except ValueError as e:
            return field_errors(when=str(e))
        try:
            self.add_reminder(submission.user_id, delay, text)
        except CommandError as e:
            return field_errors(text=str(e))
        return None

    @command("remind list", help="Show your reminders")
    def remind_list(self, call: CommandCall) -> str:
        jobs = self.jobs.list(f"{KEY_PREFIX}{call.user_id}_")
        if not jobs:
            return "You have no reminders. " + USAGE
        now = self.jobs.now()
        zone = self.zone_of(call.user_id)
        lines = ["Your reminders:"]
        for job in jobs:
            reminder_id = job.key.rsplit("_", 1)[1]
            left = describe(max(job.run_at - now, datetime.timedelta()))
            at = local_time(job.run_at, zone)
            lines.append(f"- `{reminder_id}` in {left} ({at}): {job.payload['text']}")
        return "\n".join(lines)

    @command("remind cancel", hint="<id>", help="Cancel a reminder (ids are in /remind list)")
    def remind_cancel(self, call: CommandCall) -> str:
        reminder_id = call.text.strip()
        if not re.fullmatch(r"[0-9a-f]{8}", reminder_id):
            raise CommandError("Which one? `/remind cancel <id>`, ids are in `/remind list`.")
        if self.jobs.cancel(job_key(call.user_id, reminder_id)):
            return f"Cancelled `{reminder_id}`."
        return f"You have no reminder `{reminder_id}`."

    # --- delivering them --------------------------------------------------------------------

    @one_shot(KEY_PREFIX)
    async def deliver(self, job: OneShotJob) -> None:
        user_id, reminder_id = job.key[len(KEY_PREFIX) :].rsplit("_", 1)
        text = str(job.payload["text"])
        channel = await self.aapi.get_direct_channel(user_id, self.bot_id)
        post = Post(channel_id=channel.id, user_id=self.bot_id, message=REMINDER_PREFIX + text)
        buttons = [
            Button("snooze", f"Snooze {describe(datetime.timedelta(minutes=m))}",
                   context={"id": reminder_id, "text": text, "minutes": m})
            for m in SNOOZE_CHOICES
        ]  # fmt: skip
        buttons.append(Button("done", "Done", context={"id": reminder_id}, style="primary"))
        attach(post, self.plugin_id, Attachment(actions=buttons))
        await self.aapi.create_post(post)

    @action("snooze")
    def snooze(self, request: ActionRequest) -> ActionResponse | str:
        minutes = request.context.get("minutes")
        reminder_id = request.context.get("id")
        text = request.context.get("text")
        post = self.reminder_post(request)
        if (
            post is None
            or minutes not in SNOOZE_CHOICES
            or not isinstance(reminder_id, str)
            or not isinstance(text, str)
        ):
            return NOT_MINE
        delay = datetime.timedelta(minutes=int(minutes))
        # The clicking user's own key: a button someone else posted cannot reach another
        # user's reminders.
        self.jobs.schedule_once(
            job_key(request.user_id, reminder_id),
            delay,
            {"user_id": request.user_id, "text": text},
            replace=True,
        )
        return settled(post, f"💤 Snoozed for {describe(delay)}: {text}")

    @action("done")
    def done(self, request: ActionRequest) -> ActionResponse | str:
        reminder_id = request.context.get("id")
        post = self.reminder_post(request)
        if post is None or not isinstance(reminder_id, str):
            return NOT_MINE
        self.jobs.cancel(job_key(request.user_id, reminder_id))  # a snooze set meanwhile
        return settled(post, f"✅ Done: {post.message.removeprefix(REMINDER_PREFIX)}")

    def reminder_post(self, request: ActionRequest) -> Post | None:
        """The bot's reminder the button is on, in the clicking user's direct channel with
        the bot; None for a button on any other post."""
        post = self.api.get_post(request.post_id)
        if post.user_id != self.bot_id or not post.message.startswith(REMINDER_PREFIX):
            return None
        channel = self.api.get_direct_channel(request.user_id, self.bot_id)
        return post if post.channel_id == channel.id else None


def settled(post: Post, message: str) -> ActionResponse:
    """The reminder's post with ``message`` and without its buttons."""
    post.message = message
    if "attachments" in post.props:
        del post.props["attachments"]
    return update_post(post)


if __name__ == "__main__":
    run_plugin(Remind)
