"""P2: the items API end to end: create, read, update, delete."""

from __future__ import annotations

import pytest

NAMES = [
    f"{kind} {n}"
    for kind in ("widget", "gadget", "gizmo", "doohickey", "sprocket")
    for n in range(10)
]


@pytest.mark.parametrize("name", NAMES)
def test_create_then_get(api, name):
    item = api.post("/api/items", json={"name": name, "price": len(name)}).json()
    got = api.get(f"/api/items/{item['id']}")
    assert got.status_code == 200
    assert got.json() == {"id": item["id"], "name": name, "price": len(name)}


@pytest.mark.parametrize("name", NAMES)
def test_update_changes_name_and_price(api, name):
    item = api.post("/api/items", json={"name": name, "price": 1}).json()
    updated = api.put(f"/api/items/{item['id']}", json={"name": name.upper(), "price": 2.5})
    assert updated.status_code == 200
    assert api.get(f"/api/items/{item['id']}").json()["name"] == name.upper()
    assert updated.json()["price"] == 2.5


@pytest.mark.parametrize("name", NAMES)
def test_delete_removes_the_item(api, name):
    item = api.post("/api/items", json={"name": name}).json()
    assert api.delete(f"/api/items/{item['id']}").status_code == 204
    assert api.get(f"/api/items/{item['id']}").status_code == 404


@pytest.mark.parametrize("name", NAMES)
def test_price_defaults_to_zero(api, name):
    item = api.post("/api/items", json={"name": name}).json()
    assert item["price"] == 0
    assert isinstance(item["id"], int) and item["id"] > 0
