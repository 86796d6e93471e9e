"""MONGO_READ_PREFERENCE: validated at start, applied to ``app[keys.MONGO_READS]`` only (the
reads that opt in: list and history routes), never to ``app[keys.MONGO_DB]``."""

from __future__ import annotations

import pytest

from svc_core import keys, mongo
from svc_core.resources import MongoSettings
from svc_core.settings import SettingsError
from tests.svc_core.toy import ToySettings, create_toy_app

MODES = ["primary", "primaryPreferred", "secondaryPreferred", "secondary", "nearest"]


def test_the_default_is_the_primary():
    assert MongoSettings.from_env({}).mongo_read_preference == "primary"


@pytest.mark.parametrize("mode", MODES)
def test_every_read_preference_mode_is_accepted(mode):
    settings = MongoSettings.from_env({"MONGO_READ_PREFERENCE": mode})
    assert settings.mongo_read_preference == mode


@pytest.mark.parametrize("mode", ["Secondary", "secondary_preferred", "replica", "", " primary"])
def test_anything_else_is_refused_naming_the_variable_and_the_choices(mode):
    with pytest.raises(SettingsError) as refused:
        MongoSettings.from_env({"MONGO_READ_PREFERENCE": mode})
    message = str(refused.value)
    assert message.startswith("MONGO_READ_PREFERENCE: expected one of primary, primaryPreferred")
    assert repr(mode) in message


@pytest.mark.parametrize("mode", MODES)
async def test_the_reads_database_carries_the_mode_and_sees_every_write(mode):
    db = mongo.open_client("memory://")["read-preference"]
    reads = mongo.with_read_preference(db, mode)
    assert reads["things"].read_preference.mongos_mode == mode
    assert db["things"].read_preference.mongos_mode == "primary"
    await db["things"].insert_one({"_id": "a"})
    assert await reads["things"].find({}).to_list(None) == [{"_id": "a"}]


async def test_the_app_gets_both_databases(aiohttp_client, make_settings):
    app = create_toy_app(make_settings(ToySettings, mongo_read_preference="nearest"))
    await aiohttp_client(app)
    assert app[keys.MONGO_READS]["notes"].read_preference.mongos_mode == "nearest"
    assert app[keys.MONGO_DB]["notes"].read_preference.mongos_mode == "primary"
