from tests.svc_core.toy import ToySettings, create_toy_app


async def test_smoke(aiohttp_client, make_settings, auth_header):
    client = await aiohttp_client(create_toy_app(make_settings(ToySettings)))
    resp = await client.get("/health")
    assert resp.status == 200
    h = auth_header(sub="c1")
    resp = await client.post("/notes", json={"title": " hi "}, headers=h)
    print(resp.status, await resp.text())
    resp = await client.get("/notes", headers=h)
    print(resp.status, await resp.text())
    resp = await client.get("/ready")
    print(resp.status, await resp.text())
    resp = await client.get("/boom", headers=h)
    print(resp.status, await resp.text())
    resp = await client.get("/openapi.json")
    print(resp.status, (await resp.text())[:300])
