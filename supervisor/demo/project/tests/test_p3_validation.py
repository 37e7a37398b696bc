"""P3: bad input gets a clear 4xx, never a 500 or a silent success."""

from __future__ import annotations

import pytest

BAD_ITEMS = (
    [{}, {"name": ""}, {"name": "   "}, {"name": 7}, {"name": None}, {"name": "x" * 81}]
    + [{"name": "ok", "price": p} for p in (-1, -0.01, "9", True, None, [1], {"a": 1})]
    + [[], "a string", 12, [{"name": "in a list"}]]
)


@pytest.mark.parametrize("body", BAD_ITEMS, ids=[f"item{i}" for i in range(len(BAD_ITEMS))])
def test_create_rejects_a_bad_item(api, body):
    response = api.post("/api/items", json=body)
    assert response.status_code == 422
    assert response.json()["error"]


@pytest.mark.parametrize("body", BAD_ITEMS, ids=[f"item{i}" for i in range(len(BAD_ITEMS))])
def test_update_rejects_a_bad_item(api, body):
    item = api.post("/api/items", json={"name": "valid"}).json()
    response = api.put(f"/api/items/{item['id']}", json=body)
    assert response.status_code == 422
    assert api.get(f"/api/items/{item['id']}").json()["name"] == "valid"


@pytest.mark.parametrize(
    "query",
    ["offset=-1", "limit=0", "limit=101", "limit=abc", "offset=1.5", "offset=x&limit=2"],
)
def test_listing_rejects_bad_paging(api, query):
    assert api.get(f"/api/items?{query}").status_code == 422


@pytest.mark.parametrize("item_id", [10**9 + n for n in range(60)])
def test_unknown_items_are_404(api, item_id):
    assert api.get(f"/api/items/{item_id}").status_code == 404
    assert api.delete(f"/api/items/{item_id}").status_code == 404


@pytest.mark.parametrize(
    "path", ["/api/items/abc", "/api/items/1/extra", "/api/nope", "/nope", "/"]
)
def test_unknown_paths_are_404(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/items"),
        ("DELETE", "/api/items"),
        ("GET", "/api/echo"),
        ("GET", "/api/agent/run"),
    ],
)
def test_wrong_methods_are_refused(api, method, path):
    assert api.request(method, path).status_code in (404, 405)


@pytest.mark.parametrize("n", range(20))
def test_a_body_that_is_not_json_is_400(api, n):
    response = api.post("/api/echo", content=b"{not json " + bytes([65 + n]))
    assert response.status_code == 400


@pytest.mark.parametrize("text", [None, 5, ["a"], {"t": 1}])
def test_agent_run_wants_text(api, text):
    assert api.post("/api/agent/run", json={"text": text}).status_code == 422
