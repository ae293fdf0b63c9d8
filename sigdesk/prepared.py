"""Core statements compiled once per database dialect, for the webhook's hot path.

SQLAlchemy spends about 150-200 µs per Core execution on caching, parameter processing and result
set-up, several times what SQLite spends running the statement. The ingest runs several statements
per delivery while holding SQLite's single write lock, so that overhead caps throughput. A Prepared
statement keeps SQLAlchemy as the author of the SQL (and of the type conversions, through the
columns' own bind processors) but runs it on the DBAPI cursor of the connection it is given, inside
that connection's transaction. Driver errors are wrapped the way SQLAlchemy wraps them
(IntegrityError, OperationalError, ...), without the parameters, which may hold message bodies.
What it returns is the DBAPI cursor: rowcount, lastrowid, and iteration over plain tuples.

`insert_ignore` builds on it: an INSERT that leaves an existing row alone (ON CONFLICT DO NOTHING on
SQLite, INSERT IGNORE on MySQL), so races on unique keys are settled by the database.

Limits, by design: no IN lists (write `a = x OR a = y`), and rows come back as the driver returns
them, so select only ints and strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine.interfaces import DBAPICursor, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

_MISSING = object()


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # each bound name once
    keys: tuple[str, ...] | None  # driver-side names for named paramstyles; None when positional
    defaults: tuple[Any, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    # positional SQL repeats a value used twice (x = max(x, :t) names :t three times): its position
    # in `names` for each placeholder, so each value is converted once; None when nothing repeats
    order: tuple[int, ...] | None


class Prepared:
    """`build` is a statement, or a function of the dialect name for dialect-specific SQL."""

    def __init__(
        self, build: Executable | Callable[[str], Executable], column_keys: Sequence[str] | None = None
    ) -> None:
        self._build = build
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            stmt = self._build(dialect.name) if callable(self._build) else self._build
            compiled = stmt.compile(dialect=dialect, column_keys=self._column_keys)
            if "POSTCOMPILE" in compiled.string:
                raise RuntimeError("Prepared statements cannot hold IN lists")
            order = None
            if compiled.positiontup is not None:
                names, keys = tuple(dict.fromkeys(compiled.positiontup)), None
                if len(names) != len(compiled.positiontup):
                    order = tuple(names.index(name) for name in compiled.positiontup)
            else:
                names = tuple(compiled.binds)
                escaped = compiled.escaped_bind_names or {}
                keys = tuple(escaped.get(name, name) for name in names)
            binds = [compiled.binds[name] for name in names]
            plan = _Plan(
                sql=compiled.string,
                names=names,
                keys=keys,
                defaults=tuple(_MISSING if bind.required or bind.callable else bind.effective_value for bind in binds),
                processors=tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds),
                order=order,
            )
            self._plans[dialect.name] = plan
        return plan

    def _bind(self, plan: _Plan, params: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = []
        for name, default, processor in zip(plan.names, plan.defaults, plan.processors):
            value = params.get(name, default)
            if value is _MISSING:
                raise KeyError(f"missing value for {name}")
            values.append(processor(value) if processor is not None and value is not None else value)
        if plan.keys is not None:
            return dict(zip(plan.keys, values))
        return tuple(values) if plan.order is None else tuple(values[index] for index in plan.order)

    def __call__(self, conn: Connection, params: Mapping[str, Any]) -> DBAPICursor:
        plan = self._plan(conn.dialect)
        return self._run(conn, plan, "execute", self._bind(plan, params))

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> DBAPICursor:
        """One statement for many rows: PyMySQL sends an INSERT's rows in one round trip."""
        plan = self._plan(conn.dialect)
        return self._run(conn, plan, "executemany", [self._bind(plan, row) for row in rows])

    @staticmethod
    def _run(conn: Connection, plan: _Plan, method: str, bound: Any) -> DBAPICursor:
        dialect = conn.dialect
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            getattr(cursor, method)(plan.sql, bound)
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                plan.sql,
                None,
                exc,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=dialect,
            ) from exc
        return cursor


_INSERT_IGNORE: dict[tuple[str, tuple[str, ...]], Prepared] = {}


def _ignoring_duplicates(table: Table):
    def build(dialect: str):
        if dialect == "sqlite":
            return sqlite_insert(table).on_conflict_do_nothing()
        if dialect in ("mysql", "mariadb"):
            # IGNORE also turns other errors into warnings; values are cut to column sizes first.
            return insert(table).prefix_with("IGNORE")
        raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover

    return build


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> int | None:
    """Insert unless a unique key already holds the row: the new row's id, or None when it existed."""
    key = (table.name, tuple(values))
    prepared = _INSERT_IGNORE.get(key)
    if prepared is None:
        prepared = _INSERT_IGNORE[key] = Prepared(_ignoring_duplicates(table), column_keys=key[1])
    result = prepared(conn, values)
    return (result.lastrowid or 0) if result.rowcount == 1 else None
