"""MongoDB least privilege in the settings: each service logs in as its own user (compose and
Kubernetes give it ``MONGO_USERNAME`` and ``MONGO_PASSWORD_FILE``), against its own database
unless ``MONGO_AUTH_SOURCE`` says otherwise, and the password never reaches a log line."""

from __future__ import annotations

import pytest

from svc_core import mongo
from svc_core.resources import MongoSettings
from svc_core.settings import SettingsError

URL = "mongodb://mongo:27017/?replicaSet=rs0"


def settings(**environ: str) -> MongoSettings:
    return MongoSettings.from_env({"ENVIRONMENT": "production", "MONGO_URL": URL, **environ})


async def test_the_services_own_user_reaches_pymongo_against_its_own_database():
    s = settings(MONGO_USERNAME="order", MONGO_PASSWORD="s3cret-pw")
    options = s.mongo_options("order")
    assert options == {"username": "order", "password": "s3cret-pw", "authSource": "order"}
    client = mongo.open_client(s.resolved_mongo_url(), **options)  # no I/O until used
    try:
        credentials = client.options.pool_options._credentials
        assert (credentials.username, credentials.password, credentials.source) == (
            "order",
            "s3cret-pw",
            "order",
        )
    finally:
        await client.close()
    other = settings(MONGO_USERNAME="order", MONGO_PASSWORD="pw", MONGO_AUTH_SOURCE="admin")
    assert other.mongo_options("order")["authSource"] == "admin"


async def test_without_a_user_the_client_authenticates_as_nobody():
    s = settings()
    assert s.mongo_options("order") == {}
    client = mongo.open_client(s.resolved_mongo_url(), **s.mongo_options("order"))
    try:
        assert client.options.pool_options._credentials is None
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MONGO_USERNAME": "order"}, "both or neither"),
        ({"MONGO_PASSWORD": "pw"}, "both or neither"),
        ({"MONGO_AUTH_SOURCE": "admin"}, "only with MONGO_USERNAME"),
        (
            {"MONGO_URL": "memory://", "MONGO_USERNAME": "order", "MONGO_PASSWORD": "pw"},
            "mongodb://",
        ),
    ],
)
def test_incomplete_credentials_are_refused_at_start(environ, message):
    with pytest.raises(SettingsError, match=message):
        settings(**environ)


def test_the_password_is_masked_when_the_settings_are_logged():
    described = settings(MONGO_USERNAME="order", MONGO_PASSWORD="s3cret-pw").describe()
    assert described["mongo_password"] == "***"
    assert described["mongo_username"] == "order"
    assert "s3cret-pw" not in repr(described)
