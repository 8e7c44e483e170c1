"""examples/remind on the SDK's test kit: set, list, cancel, deliver, snooze, done, the dialog,
restarts, two servers, and what a user can get wrong or forge."""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

import pytest
from mattermost_plugin import Post, User
from mattermost_plugin.testing import FakeMattermost, PluginHandle, StartPlugin
from remind_plugin import (
    BOT_USERNAME,
    KEY_PREFIX,
    MAX_PER_USER,
    Remind,
    describe,
    parse_delay,
    user_zone,
)


@dataclass
class World:
    fake: FakeMattermost
    team_id: str
    town_square: str
    alice: User
    bob: User

    def bot_id(self) -> str:
        return next(b.user_id for b in self.fake.bots.values() if b.username == BOT_USERNAME)

    def dm_posts(self, user: User) -> list[Post]:
        """What the bot sent ``user`` by direct message."""
        bot = self.bot_id()
        return [
            p
            for p in self.fake.posts.values()
            if p.user_id == bot and _members(self.fake, p.channel_id) == {bot, user.id}
        ]


def _members(fake: FakeMattermost, channel_id: str) -> set[str]:
    return {user for (channel, user) in fake.channel_members if channel == channel_id}


@pytest.fixture
def world(mm_fake: FakeMattermost) -> World:
    team = mm_fake.add_team("garden")
    town = mm_fake.add_channel(team.id, "town-square")
    alice = mm_fake.add_user("alice", email="alice@example.com")
    bob = mm_fake.add_user("bob", email="bob@example.com")
    return World(mm_fake, team.id, town.id, alice, bob)


@pytest.fixture
def remind(mm_plugin: StartPlugin) -> PluginHandle:
    return mm_plugin(Remind, plugin_id="com.mmplug.remind")


def say(handle: PluginHandle, world: World, line: str, user: User | None = None) -> str:
    user_id = (user or world.alice).id
    answer = handle.run_command(line, user_id=user_id, channel_id=world.town_square)
    return str(answer.text)


def test_a_reminder_is_delivered_once_when_due(remind: PluginHandle, world: World) -> None:
    answer = say(remind, world, "/remind me in 10m to water the plants")
    assert answer.startswith("I will remind you in 10m (at ")
    remind.advance(599)
    assert world.dm_posts(world.alice) == []
    remind.advance(1)
    (post,) = world.dm_posts(world.alice)
    assert post.message == "⏰ Reminder: water the plants"
    remind.advance(datetime.timedelta(days=1))
    assert len(world.dm_posts(world.alice)) == 1
    assert world.dm_posts(world.bob) == []


def test_the_reminder_has_snooze_and_done_buttons(remind: PluginHandle, world: World) -> None:
    say(remind, world, "/remind me in 1h to stretch")
    remind.advance(3600)
    (post,) = world.dm_posts(world.alice)
    done = remind.click(post, "Done", user_id=world.alice.id)
    updated = world.fake.posts[post.id]
    assert updated.message == "✅ Done: stretch"
    assert "attachments" not in updated.props
    assert done.update is not None


def test_snooze_delivers_it_again_later(remind: PluginHandle, world: World) -> None:
    say(remind, world, "/remind me in 5m to call mum")
    remind.advance(300)
    (post,) = world.dm_posts(world.alice)
    remind.click(post, "Snooze 10m", user_id=world.alice.id)
    assert world.fake.posts[post.id].message == "💤 Snoozed for 10m: call mum"
    assert "in 10m (" in say(remind, world, "/remind list")
    remind.advance(599)
    assert len(world.dm_posts(world.alice)) == 1
    remind.advance(1)
    again = [p for p in world.dm_posts(world.alice) if p.id != post.id]
    assert [p.message for p in again] == ["⏰ Reminder: call mum"]
    remind.click(again[0], "Snooze 1h", user_id=world.alice.id)
    with pytest.raises(LookupError, match="no button"):  # settled: its buttons are gone
        remind.click(again[0], "Done", user_id=world.alice.id)
    remind.advance(3600)
    third = [p for p in world.dm_posts(world.alice) if p.id not in (post.id, again[0].id)]
    remind.click(third[0], "Done", user_id=world.alice.id)
    assert say(remind, world, "/remind list").startswith("You have no reminders")
    remind.advance(7200)
    assert len(world.dm_posts(world.alice)) == 3


def test_list_and_cancel(remind: PluginHandle, world: World) -> None:
    assert say(remind, world, "/remind list").startswith("You have no reminders")
    say(remind, world, "/remind me in 2h to bake")
    say(remind, world, "/remind me in 30 minutes to feed the cat")
    say(remind, world, "/remind me in 1d to sleep", user=world.bob)
    listing = say(remind, world, "/remind list").splitlines()
    assert listing[0] == "Your reminders:"
    assert [line.split(": ", 1)[1] for line in listing[1:]] == ["feed the cat", "bake"]
    assert "in 30m" in listing[1] and "in 2h" in listing[2]
    reminder_id = listing[1].split("`")[1]
    assert say(remind, world, f"/remind cancel {reminder_id}") == f"Cancelled `{reminder_id}`."
    assert "no reminder" in say(remind, world, f"/remind cancel {reminder_id}")
    # Bob's ids are not Alice's to cancel.
    bobs = say(remind, world, "/remind list", user=world.bob).splitlines()[1].split("`")[1]
    assert "no reminder" in say(remind, world, f"/remind cancel {bobs}")
    assert "Which one?" in say(remind, world, "/remind cancel everything")
    remind.advance(datetime.timedelta(days=2))
    assert [p.message for p in world.dm_posts(world.alice)] == ["⏰ Reminder: bake"]
    assert [p.message for p in world.dm_posts(world.bob)] == ["⏰ Reminder: sleep"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("/remind me", "Usage"),
        ("/remind me to do it", "Usage"),
        ("/remind me in soon to x", "not a delay"),
        ("/remind me in 10 fortnights to x", "not a unit"),
        ("/remind me in 0m to x", "at least one second"),
        ("/remind me in 400d to x", "at most 365 days"),
        ("/remind me in 10m to " + "x" * 1001, "at most 1000 characters"),
    ],
)
def test_mistakes_are_explained(remind: PluginHandle, world: World, line: str, says: str) -> None:
    assert says in say(remind, world, line)
    assert remind.plugin.jobs.list() == []


def test_a_user_has_at_most_fifty(remind: PluginHandle, world: World) -> None:
    for n in range(MAX_PER_USER):
        say(remind, world, f"/remind me in {n + 1}m to task {n}")
    assert "50 reminders already" in say(remind, world, "/remind me in 1h to one more")
    assert say(remind, world, "/remind me in 1h to mine", user=world.bob).startswith("I will")


def test_the_dialog_creates_one_and_explains_mistakes(remind: PluginHandle, world: World) -> None:
    say(remind, world, "/remind new")
    user_id, opened = world.fake.dialogs[-1]
    assert user_id == world.alice.id and opened.dialog.title == "New reminder"
    bad = remind.submit_dialog(opened, {"text": "tea", "when": "later"}, user_id=user_id)
    assert "not a delay" in bad.errors["when"]
    empty = remind.submit_dialog(opened, {"text": " ", "when": "5m"}, user_id=user_id)
    assert set(empty.errors) == {"text"}
    assert remind.submit_dialog(opened, {"text": "tea", "when": "5m"}, user_id=user_id).ok
    remind.advance(300)
    assert [p.message for p in world.dm_posts(world.alice)] == ["⏰ Reminder: tea"]


def test_a_reminder_survives_a_restart(mm_fake: FakeMattermost, world: World) -> None:
    with mm_fake.start(Remind, plugin_id="com.mmplug.remind") as first:
        say(first, world, "/remind me in 1h to restart-proof")
    mm_fake.clock.advance(1800)  # the plugin is down for half an hour
    with mm_fake.start(Remind, plugin_id="com.mmplug.remind") as second:
        second.advance(1799)
        assert world.dm_posts(world.alice) == []
        second.advance(1)
        assert [p.message for p in world.dm_posts(world.alice)] == ["⏰ Reminder: restart-proof"]


def test_two_servers_deliver_it_once(mm_fake: FakeMattermost, world: World) -> None:
    with (
        mm_fake.start(Remind, plugin_id="com.mmplug.remind") as a,
        mm_fake.start(Remind, plugin_id="com.mmplug.remind") as b,
    ):
        say(a, world, "/remind me in 10m to once")
        b.advance(600)  # b learns of it on its next poll and delivers it
        a.advance(0)  # a finds it already delivered
        assert [p.message for p in world.dm_posts(world.alice)] == ["⏰ Reminder: once"]


def test_a_forged_button_cannot_touch_someone_elses_reminder(
    remind: PluginHandle, world: World
) -> None:
    say(remind, world, "/remind me in 1h to bob's secret", user=world.bob)
    (job,) = remind.plugin.jobs.list()
    bobs_id = job.key.rsplit("_", 1)[1]
    # Alice clicks a button posted with Bob's reminder id: it acts on Alice's keys only, and
    # only on the bot's reminders in her own direct channel.
    say(remind, world, "/remind me in 1m to mine")
    remind.advance(60)
    (alices_post,) = world.dm_posts(world.alice)
    forged = {"id": bobs_id, "text": "hijacked", "minutes": 10}
    answer = remind.action("done", user_id=world.alice.id, context=forged, post_id=alices_post.id)
    assert answer.update is not None  # Alice's own post, settled
    assert [j.key for j in remind.plugin.jobs.list()] == [job.key]  # Bob's is untouched
    bobs_post = world.fake.posts[world.fake.api.create_post(
        Post(channel_id=world.town_square, user_id=world.bob.id, message="hello")
    ).id]  # fmt: skip
    refused = remind.action("snooze", user_id=world.alice.id, context=forged, post_id=bobs_post.id)
    assert refused.ephemeral_text == "That button is not one of mine." and refused.update is None
    assert [j.key for j in remind.plugin.jobs.list()] == [job.key]


def test_delays() -> None:
    assert parse_delay("1h30m") == datetime.timedelta(minutes=90)
    assert parse_delay("1 day 2 hours") == datetime.timedelta(hours=26)
    assert parse_delay("45 s") == datetime.timedelta(seconds=45)
    for bad in ("", "h", "10", "10m and then some", "-5m"):
        with pytest.raises(ValueError):
            parse_delay(bad)
    assert describe(datetime.timedelta(hours=26, seconds=5)) == "1d 2h 5s"
    assert KEY_PREFIX == "remind_"


def test_times_are_shown_in_the_users_time_zone(remind: PluginHandle, world: World) -> None:
    world.fake.users[world.alice.id].timezone.update(
        {"useAutomaticTimezone": "false", "manualTimezone": "Asia/Tokyo"}
    )
    answer = say(remind, world, "/remind me in 1h to eat")
    due = remind.plugin.jobs.list()[0].run_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert answer == f"I will remind you in 1h (at {due:%Y-%m-%d %H:%M} JST)."
    assert f"({due:%Y-%m-%d %H:%M} JST): eat" in say(remind, world, "/remind list")
    # Bob names no zone, or one this machine does not know: UTC.
    assert say(remind, world, "/remind me in 1h to nap", user=world.bob).endswith(" UTC).")
    assert user_zone({"useAutomaticTimezone": "true", "automaticTimezone": "Mars/Olympus"}) == (
        datetime.timezone.utc
    )
