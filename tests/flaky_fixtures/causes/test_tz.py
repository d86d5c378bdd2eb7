"""Environment, not randomness: a random order time crosses midnight in UTC but not in New York.

On a UTC machine a third of the draws date the invoice on the next day; the failing seed
passes under TZ=America/New_York (22:00-01:00 UTC is 18:00-21:00 there).
test_local_noon_is_new_york_noon passes only where the machine's zone is America/New_York:
broken here, and the runner says where it passes.
"""

import random
from datetime import date, datetime, timezone

ORDERS_FROM = datetime(2026, 3, 8, 22, 0, tzinfo=timezone.utc).timestamp()


def test_invoice_is_dated_on_the_order_day() -> None:
    placed = ORDERS_FROM + random.uniform(0, 3 * 3600)
    assert datetime.fromtimestamp(placed).date() == date(2026, 3, 8)


def test_local_noon_is_new_york_noon() -> None:
    noon_utc = datetime(2026, 6, 1, 16, 0, tzinfo=timezone.utc).timestamp()
    assert datetime.fromtimestamp(noon_utc).hour == 12
