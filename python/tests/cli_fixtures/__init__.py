"""Test doubles for the ``mmplug`` CLI tests: ELF files, wheels and a fake Mattermost server."""
