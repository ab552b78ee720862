"""Business journeys: what a customer does end to end."""

import pytest
from staging import get, post


def test_customer_places_an_order():
    status, user = get("/api/users/7")
    assert status == 200
    status, order = post("/api/orders", {"user": user["id"], "items": ["plan-pro"]})
    assert status == 201 and order["id"].startswith("ord-")


@pytest.mark.parametrize("items", [["plan-basic"], ["plan-pro", "seat"], ["addon"]])
def test_order_echoes_items(items):
    status, order = post("/api/orders", {"user": 1, "items": items})
    assert status == 201 and order["items"] == items
