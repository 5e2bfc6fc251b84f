"""Rule 4 of SPEC section 3, which rows a run deletes: one plan, read by everyone who needs to know.

The apply deletes what the plan holds (and a dry run reports its count), the deletion guard weighs
its snapshot part, the journal records its rows before they go, and the review page of a held run
shows its count, a sample of its keys and the downloadable list of them; rule 5 (the deletion
guard) weighs the plan in `guard_reason`. Each builds the plan with
`DeletionPlan.of`; nobody spells the rule again.

Building the plan runs no statement but one cheap EXISTS (whether the run listed deletes at all);
the counts run when asked for, once each. Inside the apply on PostgreSQL (`read_ids`), the snapshot's
rows are read once, as their primary keys, and counted and deleted by them. The plan reads the staging table and never creates it: a
run whose table does not exist has staged nothing, and its plan is what it would be on an empty table.
"""

from dataclasses import dataclass
from functools import cached_property

from django.db import connection
from django.db.models import Exists, QuerySet

from ..models import Mode, RecordError, SyncBatch, SyncRun
from ..targets import Target
from . import parallel, staging


@dataclass(eq=False)
class DeletionPlan:
    target: Target
    owner_id: object
    # the rows the run's listed `deletes` remove (any mode): a record of the run wins over a listed
    # delete of the same key
    explicit: QuerySet
    # the rows its full snapshot removes: the owner's rows whose key no staging row of the run has
    # (its records, its failed records' keys, its listed deletes); None: no snapshot deletion
    snapshot: QuerySet | None
    # failed records without a readable key: a full run then skips its snapshot deletion (they
    # might have named any row)
    keyless: int = 0
    # the primary keys of the snapshot's rows, when the apply read them (`read_ids`); else None
    snapshot_ids: list | None = None

    @classmethod
    def of(cls, run: SyncRun, target: Target, owner_id) -> "DeletionPlan":
        rows = target.owner_rows(owner_id)
        explicit = rows.none()
        staged_any = staging.table_exists(target)
        if staged_any and SyncBatch.objects.filter(run=run, deletes__gt=0).exists():  # most runs list none
            same_key = staging.same_key(target)
            in_run = Exists(staging.staged(target, run.pk).filter(**same_key))
            listed = Exists(staging.staged(target, run.pk, staging.DELETE).filter(**same_key))
            explicit = rows.filter(listed).exclude(in_run)
        if run.mode != Mode.FULL:
            return cls(target, owner_id, explicit, None)
        keyless = RecordError.objects.filter(run=run, key__isnull=True).count()
        if keyless:
            return cls(target, owner_id, explicit, None, keyless)
        if not staged_any:  # no staging row at all: the snapshot keeps no row
            return cls(target, owner_id, explicit, rows)
        # the snapshot's keys are every staging row of the run: one anti-join
        same_key = staging.same_key(target)
        return cls(
            target, owner_id, explicit, rows.exclude(Exists(staging.staged(target, run.pk, None).filter(**same_key)))
        )

    @cached_property
    def explicit_count(self) -> int:
        return self.explicit.count()  # none(): no query

    @cached_property
    def snapshot_count(self) -> int:
        if self.snapshot_ids is not None:
            return len(self.snapshot_ids)
        return 0 if self.snapshot is None else self.snapshot.count()

    def read_ids(self) -> None:
        """Inside the apply, on PostgreSQL: read the snapshot's rows once, as their primary keys,
        before anything counts them. Their count, the guard and the delete then use them, and
        the anti-join of the owner's rows with the staged keys runs once, in parallel (0.65 s at
        1,000,000 rows), not once to count and once more, in one process and joined back to the
        table, to delete (1.2-1.7 s). More than parallel.LIMIT rows are left to the query. Outside
        the apply (the review page) the plan counts with its query: no ids to hold."""
        if connection.vendor != "postgresql" or self.snapshot is None or "snapshot_count" in self.__dict__:
            return
        sql, params = self.snapshot.order_by().values("pk").query.sql_with_params()
        self.snapshot_ids = parallel.ids(sql, params)

    def rows_sql(self, pk: str) -> tuple[str, list]:
        """SQL: the condition on a primary key column (`pk`, quoted) that the rows the run deletes
        meet, and its parameters: by their keys when `read_ids` has them, else as a subquery."""
        if self.snapshot_ids is not None and not self.explicit_count:
            return f"{pk} = ANY(%s::{self.target.model._meta.pk.db_type(connection)}[])", [self.snapshot_ids]
        sql, params = pk_subquery(self._rows())
        return f"{pk} IN ({sql})", list(params)

    @cached_property
    def current(self) -> int:
        """How many rows the owner has now: what the guard weighs the snapshot's deletions against."""
        return self.target.owner_rows(self.owner_id).count()

    def count(self) -> int:
        """How many rows the run deletes (the two parts never share a row: a listed key is a
        staging row of the run, so the snapshot keeps it)."""
        return self.explicit_count + self.snapshot_count

    def guard_reason(self, run: SyncRun) -> str | None:
        """Rule 5, the deletion guard: why this plan holds the run for review, or None. It holds a
        full snapshot that would delete more than `max_deletes_percent` of the owner's current rows
        (and more than 10 rows), or every row; listed deletes never count, and an approved run
        (`guard_waived`) is not held again."""
        snapshot_n = self.snapshot_count
        if not snapshot_n or run.guard_waived:
            return None
        limit = run.integration.max_deletes_percent
        current = self.current
        if snapshot_n == current:
            why = "every row"
        elif snapshot_n * 100 > limit * current and snapshot_n > 10:
            why = f"{snapshot_n / current:.1%} of them, above max_deletes_percent {limit:g}%"
        else:
            return None
        return (
            f"held for review: this full snapshot would delete {snapshot_n} of the {current} current "
            f"rows ({why}). Approve to apply it, or reject it."
        )

    def doomed(self) -> QuerySet | None:
        """Every row the run deletes as one queryset; None when it deletes none."""
        if not self.count():
            return None
        return self._rows()

    def _rows(self) -> QuerySet:
        return self.explicit if self.snapshot is None else self.explicit | self.snapshot

    def keys(self, limit: int | None = None, *, chunk_size: int = 2000):
        """The keys of the doomed rows in key order, as tuples of the key fields' values: the first
        `limit` as a list, or (limit None) all of them as an iterator read in chunks."""
        doomed = self.doomed()
        if doomed is None:
            return [] if limit is not None else iter(())
        rows = doomed.order_by(*self.target.keys).values_list(*self.target.keys)
        return list(rows[:limit]) if limit is not None else rows.iterator(chunk_size=chunk_size)

    def delete(self) -> int:
        """Delete the rows; how many of the target's rows went (not the rows deleted with them
        through CASCADE)."""
        label = self.target.model._meta.label
        deleted = self.explicit.delete()[1].get(label, 0) if self.explicit_count else 0
        if self.snapshot_count and self.snapshot is not None:
            deleted += self.snapshot.delete()[1].get(label, 0)
        return deleted


def pk_subquery(rows: QuerySet) -> tuple[str, tuple]:
    """The primary keys of `rows` as a subquery (SQL, parameters), without the model's default
    ordering: a model ordered by a related field (catalog.Product by its customer's slug) would
    otherwise join that table and sort every row, for an IN that ignores the order."""
    return rows.order_by().values("pk").query.sql_with_params()
