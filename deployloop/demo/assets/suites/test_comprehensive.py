"""Comprehensive coverage: the long tail of endpoints."""

import pytest
from staging import get


@pytest.mark.parametrize("user_id", range(100, 120))
def test_user_profiles(user_id):
    status, body = get(f"/api/users/{user_id}")
    assert status == 200 and body["email"].endswith("@example.test")


def test_unknown_route_is_404():
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as info:
        get("/api/nothing-here")
    info.value.close()
    assert info.value.code == 404
