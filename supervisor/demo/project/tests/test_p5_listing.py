"""P5: listing and paging stay consistent while items come and go."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def seeded(api):
    """Twenty-five items this module creates, by id."""
    return [
        api.post("/api/items", json={"name": f"seed {n}", "price": n}).json() for n in range(25)
    ]


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 10, 25, 50, 100])
@pytest.mark.parametrize("offset", [0, 1, 5, 10, 24])
def test_a_page_is_sorted_and_bounded(api, seeded, offset, limit):
    page = api.get(f"/api/items?offset={offset}&limit={limit}").json()
    ids = [item["id"] for item in page["items"]]
    assert ids == sorted(ids)
    assert len(ids) <= limit
    assert page["total"] >= len(seeded)


@pytest.mark.parametrize("n", range(25))
def test_a_seeded_item_is_listed_with_its_fields(api, seeded, n):
    wanted = seeded[n]
    page = api.get("/api/items?offset=0&limit=100").json()
    found = [item for item in page["items"] if item["id"] == wanted["id"]]
    if not found:  # more than 100 items: page until it shows up
        offset = 100
        while not found and offset < page["total"]:
            more = api.get(f"/api/items?offset={offset}&limit=100").json()["items"]
            found = [item for item in more if item["id"] == wanted["id"]]
            offset += 100
    assert found == [wanted]


@pytest.mark.parametrize("n", range(40))
def test_total_grows_when_an_item_is_created(api, n):
    before = api.get("/api/items?limit=1").json()["total"]
    api.post("/api/items", json={"name": f"growth {n}"})
    assert api.get("/api/items?limit=1").json()["total"] >= before + 1


@pytest.mark.parametrize("n", range(40))
def test_default_page_size_is_ten(api, seeded, n):
    assert len(api.get("/api/items").json()["items"]) == 10
