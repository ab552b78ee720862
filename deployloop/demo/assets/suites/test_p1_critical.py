"""P1 critical: the platform answers at all. Zero tolerance."""

import pytest
from staging import get


def test_health_is_ok():
    status, body = get("/health")
    assert status == 200 and body["status"] == "ok"


def test_version_is_reported():
    status, body = get("/version")
    assert status == 200 and body["commit"].startswith("rev-")


@pytest.mark.parametrize("user_id", [1, 2, 3, 42])
def test_user_lookup(user_id):
    status, body = get(f"/api/users/{user_id}")
    assert status == 200 and body["id"] == user_id


def test_agents_are_ready():
    status, body = get("/api/agents")
    assert status == 200 and all(a["status"] == "ready" for a in body["agents"])
