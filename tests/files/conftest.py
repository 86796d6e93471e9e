"""Fixtures of the file service's tests: the app on a real socket, with the local backend in a
temporary directory or the s3 backend on moto's S3 server (a real S3 HTTP endpoint, started here
as a subprocess on a free port)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from svc_files import FilesSettings, create_app
from svc_files.storage import Storage, open_storage
from tests.files.moto import moto_server, new_bucket


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's S3 server, one process for the whole session."""
    with moto_server() as url:
        yield url


@pytest.fixture
def s3_bucket(moto_url: str) -> str:
    """A fresh bucket of this test's own on the moto server."""
    return new_bucket(moto_url)


def storage_overrides(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> dict[str, Any]:
    if backend == "local":
        return {"storage": "local", "local_root": tmp_path / "storage"}
    moto_url = request.getfixturevalue("moto_url")
    return {
        "storage": "s3",
        "s3_bucket": request.getfixturevalue("s3_bucket"),
        "s3_endpoint_url": moto_url,
        "s3_access_key_id": "testing",
        "s3_secret_access_key": "testing",
        "s3_part_size": 5 * 1024 * 1024,
    }


@pytest.fixture(params=["local"])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend the route tests use (the storage suite runs on both)."""
    return str(request.param)


@pytest.fixture
def make_files_settings(
    make_settings: Callable[..., Any], backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., FilesSettings]:
    def make(**overrides: Any) -> FilesSettings:
        values = storage_overrides(backend, tmp_path, request) | overrides
        return make_settings(FilesSettings, **values)

    return make


@pytest.fixture
def files_settings(make_files_settings: Callable[..., FilesSettings]) -> FilesSettings:
    return make_files_settings()


@pytest.fixture
async def client(aiohttp_client: Any, files_settings: FilesSettings) -> TestClient:
    return await aiohttp_client(create_app(files_settings))


@pytest.fixture
async def storage(files_settings: FilesSettings) -> AsyncIterator[Storage]:
    """A second handle on the same storage, to look at what the service left there."""
    store = open_storage(files_settings)
    await store.start()
    yield store
    await store.close()
