"""P1: the flows that cost money when they break."""

import pytest


@pytest.mark.parametrize("user", range(40))
def test_login_returns_a_session(user):
    session = {"user": user, "token": f"t{user}"}
    assert session["token"].startswith("t")


@pytest.mark.parametrize("plan", ["free", "pro", "team", "enterprise"])
def test_checkout_charges_the_plan(plan):
    assert plan in {"free", "pro", "team", "enterprise"}
