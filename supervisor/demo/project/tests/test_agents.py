"""Agent tests: the agent's events over HTTP and over the WebSocket stream."""

from __future__ import annotations

import json

import pytest
from e2e import AGENT_EVENTS, WS, ask, events_until_completed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

PROMPTS = [
    f"{verb} {thing}"
    for verb in ("find", "plan", "summarise", "draft")
    for thing in (
        "my week",
        "the release notes",
        "a trip to Lisbon",
        "the quarterly numbers",
        "a reply to Ana",
        "the on-call rota",
        "lunch",
        "a birthday gift",
        "the test plan",
        "a haiku",
    )
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_agent_run_emits_the_five_events_in_order(api, prompt):
    body = api.post("/api/agent/run", json={"text": prompt}).json()
    assert [e["type"] for e in body["events"]] == AGENT_EVENTS
    assert body["status"] == "completed"


@pytest.mark.parametrize("prompt", PROMPTS)
def test_agent_reply_uses_the_tool_result(api, prompt):
    events = api.post("/api/agent/run", json={"text": prompt}).json()["events"]
    tool = next(e for e in events if e["type"] == "tool_completed")
    final = events[-1]
    assert final["type"] == "agent_completed"
    assert final["words"] == tool["result"] == len(prompt.split())


@pytest.mark.parametrize("prompt", PROMPTS[:20])
def test_agent_stream_sends_the_events_in_order(agent_ws, prompt):
    ask(agent_ws, prompt)
    events = events_until_completed(agent_ws, timeout=5)
    assert [e["type"] for e in events] == AGENT_EVENTS
    assert events[0]["input"] == prompt


@pytest.mark.parametrize("turns", [2, 3, 4])
def test_agent_stream_serves_several_turns_on_one_connection(agent_ws, turns):
    for turn in range(turns):
        ask(agent_ws, f"turn {turn}")
        assert events_until_completed(agent_ws, timeout=5)[-1]["reply"] == f"turn {turn}"[::-1]


@pytest.mark.parametrize("message", ["not json", json.dumps({"type": "other"}), json.dumps([1])])
def test_agent_stream_answers_bad_messages_with_an_error(agent_ws, message):
    agent_ws.send(message)
    assert json.loads(agent_ws.recv(timeout=5))["type"] == "error"


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc"])
def test_agent_stream_refuses_a_handshake_without_a_valid_token(header):
    headers = {"Authorization": header} if header else {}
    with pytest.raises(InvalidStatus) as refused:
        with connect(WS, additional_headers=headers, open_timeout=5):
            pass
    assert refused.value.response.status_code == 401
