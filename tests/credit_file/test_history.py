"""The credit file through GET /v1/customers/{id}/history: newest first, who and why, pages."""

from __future__ import annotations

from tests.helpers import account, check


async def test_history_newest_first_with_who_and_why(api):
    await account(api, limit="1000")
    await api.patch("/v1/customers/C1", {"credit_limit": "2000", "reason": "annual review"})
    await check(api, "O1", "100")
    items = (await api.get("/v1/customers/C1/history")).json()["items"]
    assert [i["event"] for i in items] == ["credit_check", "account_changed", "account_created"]
    change = items[1]
    assert change["actor"] == "test-admin" and change["note"] == "annual review"
    assert change["details"]["changes"]["credit_limit"] == {"old": "1000.00",
                                                            "new": "2000.00"}
    assert items[0]["decision"]["outcome"] == "approve"
    assert items[0]["actor"] == "test-order-entry"


async def test_history_pages_with_a_cursor(api):
    await account(api, limit="100000")
    for i in range(7):
        await check(api, f"O{i}", "1")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/customers/C1/history", params=params)).json()
        seen += [i["order_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"O{i}" for i in reversed(range(7))] + [None]
