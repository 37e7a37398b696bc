"""P4: payloads of every shape survive the API unchanged (serialisation, unicode)."""

from __future__ import annotations

import pytest

SCALARS = [0, 1, -1, 2**53, 3.5, -0.25, True, False, None, "", "plain", "ünïcödé", "日本語", "🚀"]
SHAPES = [
    lambda v: v,
    lambda v: [v],
    lambda v: {"value": v},
    lambda v: {"nested": {"deeper": [v, v]}},
    lambda v: [[v], {"k": v}],
]


@pytest.mark.parametrize("shape", range(len(SHAPES)))
@pytest.mark.parametrize("value", SCALARS, ids=[f"v{i}" for i in range(len(SCALARS))])
def test_echo_keeps_the_payload(api, value, shape):
    payload = {"data": SHAPES[shape](value)}
    assert api.post("/api/echo", json=payload).json() == {"echo": payload}


@pytest.mark.parametrize("size", [1, 10, 100, 1000, 10_000])
@pytest.mark.parametrize("char", ["a", "é", "✓", "\n", '"'])
def test_echo_keeps_long_strings(api, size, char):
    text = char * size
    assert api.post("/api/echo", json={"text": text}).json()["echo"]["text"] == text


@pytest.mark.parametrize("n", range(90))
def test_echo_keeps_key_order_and_types(api, n):
    payload = {f"k{i}": (i if i % 2 else str(i)) for i in range(n)}
    echoed = api.post("/api/echo", json=payload).json()["echo"]
    assert list(echoed) == list(payload)
    assert echoed == payload
