"""Every operation of the OpenAPI document has a short, stable, unique snake_case operationId.

Generated clients name their methods after these ids, so renaming one breaks every client
built from the document. EXPECTED is the committed contract: a change to an id, a new
operation or a removed one makes this test fail until EXPECTED is edited too, so that an
id only ever changes on purpose.
"""

from __future__ import annotations

import re
from typing import Any

from app.main import create_app
from app.settings import Settings

EXPECTED = {
    ("POST", "/v1/credit-checks"): "create_credit_check",
    ("GET", "/v1/policies/{risk_class}"): "get_policy",
    ("PUT", "/v1/policies/{risk_class}"): "put_policy",
    ("GET", "/v1/policies/{risk_class}/history"): "get_policy_history",
    ("POST", "/v1/policies/{risk_class}/simulate"): "simulate_policy",
    ("GET", "/v1/orders/{order_id}"): "get_order",
    ("PATCH", "/v1/orders/{order_id}"): "amend_order",
    ("POST", "/v1/orders/{order_id}/dispatch-check"): "dispatch_check",
    ("POST", "/v1/orders/{order_id}/cancel"): "cancel_order",
    ("POST", "/v1/orders/{order_id}/release"): "release_order",
    ("POST", "/v1/orders/{order_id}/reject"): "reject_order",
    ("GET", "/v1/holds"): "list_holds",
    ("PUT", "/v1/customers/{customer_id}"): "put_customer",
    ("PATCH", "/v1/customers/{customer_id}"): "patch_customer",
    ("GET", "/v1/customers/{customer_id}"): "get_customer",
    ("GET", "/v1/customers/{customer_id}/exposure"): "get_exposure",
    ("PUT", "/v1/groups/{group_id}"): "put_group",
    ("GET", "/v1/groups/{group_id}"): "get_group",
    ("GET", "/v1/groups/{group_id}/exposure"): "get_group_exposure",
    ("GET", "/v1/customers/{customer_id}/history"): "get_history",
    ("POST", "/v1/invoices"): "create_invoice",
    ("POST", "/v1/payments"): "create_payment",
    ("PUT", "/v1/customers/{customer_id}/open-items"): "put_open_items",
    ("GET", "/v1/customers/{customer_id}/payment-behaviour"): "get_payment_behaviour",
    ("PUT", "/v1/fx-rates/{from}/{to}"): "put_fx_rate",
    ("GET", "/v1/fx-rates"): "list_fx_rates",
    ("GET", "/v1/alerts"): "list_alerts",
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): "acknowledge_alert",
    ("GET", "/v1/reviews"): "list_reviews",
    ("GET", "/livez"): "livez",
    ("GET", "/readyz"): "readyz",
    ("GET", "/metrics"): "metrics",
    ("GET", "/v1/scorecard"): "get_scorecard",
    ("PUT", "/v1/scorecard"): "put_scorecard",
    ("GET", "/v1/scorecard/history"): "get_scorecard_history",
    ("POST", "/v1/customers/{customer_id}/assessments"): "create_assessment",
    ("GET", "/v1/customers/{customer_id}/assessments"): "list_assessments",
    ("GET", "/v1/customers/{customer_id}/assessments/{assessment_id}"): "get_assessment",
    ("POST", "/v1/customers/{customer_id}/assessments/{assessment_id}/apply"):
        "apply_assessment",
    ("PUT", "/v1/customers/{customer_id}/securities/{security_id}"): "put_security",
    ("GET", "/v1/customers/{customer_id}/securities"): "list_securities",
    ("GET", "/v1/customers/{customer_id}/securities/{security_id}"): "get_security",
    ("DELETE", "/v1/customers/{customer_id}/securities/{security_id}"): "delete_security",
    ("GET", "/v1/events"): "list_events",
    ("POST", "/v1/webhooks"): "create_webhook",
    ("GET", "/v1/webhooks"): "list_webhooks",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "delete_webhook",
    ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"): "rotate_webhook_secret",
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): "list_webhook_deliveries",
    ("POST", "/v1/webhooks/{webhook_id}/redeliver/{event_id}"): "redeliver_webhook_event",
}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(settings: Settings) -> dict[tuple[str, str], dict[str, Any]]:
    doc = create_app(settings).openapi()
    return {(method.upper(), path): operation
            for path, item in doc["paths"].items()
            for method, operation in item.items() if method in HTTP_METHODS}


def test_every_operation_has_a_snake_case_id(settings: Settings) -> None:
    operations = _operations(settings)
    assert operations
    missing = [key for key, op in operations.items() if not op.get("operationId")]
    assert missing == []
    bad = {key: op["operationId"] for key, op in operations.items()
           if not SNAKE.match(op["operationId"])}
    assert bad == {}


def test_operation_ids_are_unique(settings: Settings) -> None:
    ids = [op["operationId"] for op in _operations(settings).values()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == []


def test_operation_ids_are_the_committed_ones(settings: Settings) -> None:
    """A difference here is an API change for every generated client: update EXPECTED (and
    tell the clients) only when the change is meant."""
    actual = {key: op["operationId"] for key, op in _operations(settings).items()}
    assert actual == EXPECTED


def test_the_ids_do_not_leak_fastapi_defaults(settings: Settings) -> None:
    # FastAPI's default ids end in the path and the method (`..._v1_credit_checks_post`).
    for (method, _path), op in _operations(settings).items():
        assert not op["operationId"].endswith(f"_{method.lower()}"), op["operationId"]
        assert "_v1_" not in op["operationId"]
