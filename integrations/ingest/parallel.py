"""Reads of the apply that PostgreSQL should run on every core although they return rows.

The planner prices each row a parallel worker hands back at `parallel_tuple_cost` (0.1). It cannot
estimate how many rows pass an anti-join or an IS DISTINCT FROM: at 1,000,000 staged records it
guessed a third of them to all of them, and then ran these reads in one process. Measured on the
bench's data (1,000,000 rows of the owner, 1,000,000 staged, 2 cores): the owner's rows the run
does not have, 1.0 s in one process, 0.65 s in parallel; the records that are new or differ, 1.7 s
in one process, 1.1 s in parallel. What they return is small in the usual run (the rows a snapshot
deletes, the records it changes), and `ids` stops reading it after `limit` rows.
"""

from django.db import connection

LIMIT = 250_000  # ids held in the worker at most (some 20 MB while read); beyond, the caller's SQL decides


def ids(sql: str, params, limit: int | None = None) -> list | None:
    """The first column of the rows of `sql` (a SELECT), read with a parallel plan where the
    planner finds one, in this transaction; None when there are more than `limit` (LIMIT) of them."""
    limit = min(LIMIT, limit) if limit is not None else LIMIT
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('parallel_tuple_cost')")
        (before,) = cursor.fetchone()
        # for this transaction only (a failing read aborts it, and the rollback undoes this too)
        cursor.execute("SELECT set_config('parallel_tuple_cost', '0.001', true)")
        cursor.execute(sql, params)
        rows = cursor.fetchmany(limit + 1)
        cursor.execute("SELECT set_config('parallel_tuple_cost', %s, true)", [before])
    if len(rows) > limit:
        return None
    return [row[0] for row in rows]
