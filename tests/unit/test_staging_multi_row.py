"""Staging rows written as multi-row INSERTs (staging._multi_row): every row once, in order, each
statement within the database's parameter limit."""

import pytest
from django.db import connection

from integrations.ingest import staging


@pytest.mark.parametrize("count", [0, 1, 89, 90, 91, 181, 1000])
def test_every_row_once_in_order_within_the_parameter_limit(count):
    width = 11
    rows = [tuple(range(i * width, (i + 1) * width)) for i in range(count)]
    statements = staging._multi_row("INSERT INTO t (a) VALUES ", width, rows)
    flat = [v for _sql, params in statements for p in params for v in p]
    assert flat == [v for row in rows for v in row]
    limit = connection.features.max_query_params or 10**9
    for sql, params in statements:
        assert sql.count("%s") <= limit
        assert all(len(p) == sql.count("%s") for p in params)
    assert len(statements) <= 2
