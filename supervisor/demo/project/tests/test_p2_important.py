"""P2: important but not critical."""

import time

import pytest


@pytest.mark.parametrize("n", range(100))
def test_search_paginates(n):
    time.sleep(0.002)
    assert list(range(n))[:10] == list(range(min(n, 10)))


@pytest.mark.skip(reason="export is feature-flagged off in staging")
def test_export_csv():
    raise AssertionError
