"""The reps' feedback database: users, verdicts (agree / disagree with the score, and why), sticky
overrides of the next step or grade (the model's value at override time kept beside the rep's) and
"contacted" notes. SQLAlchemy Core: SQLite by default (one file), PostgreSQL by URL.

Tables are created on first use and stamped with a schema version; a table is never dropped or
rewritten here. Every write is validated and raises :class:`FeedbackError` naming the field at fault.
Who may write what is the web app's business; the store only insists that the author is a known user
once the database has users.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from pipeline.config import FeedbackParams, FeedbackReasons, Settings
from pipeline.errors import FeedbackError
from pipeline.feedback.passwords import MAX_LENGTH as PASSWORD_MAX
from pipeline.feedback.passwords import MIN_LENGTH as PASSWORD_MIN
from pipeline.feedback.passwords import hash_password, verify_password

log = logging.getLogger(__name__)

URL_ENV = "LEADSCORE_FEEDBACK_URL"
SCHEMA_VERSION = 1
VERDICTS = ("agree", "disagree")
ROLES = ("rep", "manager")
# The values scoring writes (pipeline.scoring.routing, pipeline.modeling.grades), lowest first.
NEXT_STEPS = ("disqualify", "nurture", "sales_ready")
GRADES = ("D", "C", "B", "A")
NOTE_MAX = 2000
ID_MAX, NAME_MAX, OWNER_MAX = 200, 100, 200
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")

metadata = sa.MetaData()
meta_table = sa.Table(
    "leadscore_meta", metadata,
    sa.Column("key", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)
users_table = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(NAME_MAX), primary_key=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("owner", sa.String(OWNER_MAX), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.CheckConstraint("role IN ('rep', 'manager')", name="users_role"),
)
verdicts_table = sa.Table(
    "verdicts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("record_id", sa.String(ID_MAX), nullable=False, index=True),
    sa.Column("author", sa.String(NAME_MAX), nullable=False),
    sa.Column("verdict", sa.String(10), nullable=False),
    sa.Column("reason", sa.String(100), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("grade", sa.String(1), nullable=False),
    sa.Column("next_step", sa.String(20), nullable=False),
    sa.Column("model_version", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.CheckConstraint("verdict IN ('agree', 'disagree')", name="verdicts_verdict"),
)
overrides_table = sa.Table(
    "overrides", metadata,
    sa.Column("record_id", sa.String(ID_MAX), primary_key=True),
    sa.Column("next_step", sa.String(20), nullable=True),
    sa.Column("grade", sa.String(1), nullable=True),
    sa.Column("model_next_step", sa.String(20), nullable=False),
    sa.Column("model_grade", sa.String(1), nullable=False),
    sa.Column("author", sa.String(NAME_MAX), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)
contacts_table = sa.Table(
    "contacts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("record_id", sa.String(ID_MAX), nullable=False, index=True),
    sa.Column("author", sa.String(NAME_MAX), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)

# store.table() and the scores files: one row per lead with feedback, these columns after record_id.
REP_COLUMNS = ("rep_verdict", "rep_reason", "rep_note", "rep_verdict_by", "rep_verdict_at", "rep_next_step",
               "rep_grade", "override_model_next_step", "override_model_grade", "override_by", "override_at",
               "override_note", "last_contacted_at", "contacts")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
NO_TABLES = "has no feedback tables yet"


@dataclass(frozen=True)
class User:
    name: str
    owner: str          # the CRM owner value a rep's leads carry
    role: str           # rep (sees their own leads) or manager (sees every lead)
    created_at: datetime


@dataclass(frozen=True)
class Verdict:
    id: int
    record_id: str
    author: str
    verdict: str        # agree or disagree with the model
    reason: str
    note: str
    score: int          # the model's score, grade, next step and version when the rep gave the verdict
    grade: str
    next_step: str
    model_version: str
    created_at: datetime


@dataclass(frozen=True)
class Override:
    record_id: str
    next_step: str | None    # the rep's value (None: the model's applies)
    grade: str | None
    model_next_step: str     # the model's value when the rep overrode it
    model_grade: str
    author: str
    note: str
    updated_at: datetime


@dataclass(frozen=True)
class Contact:
    id: int
    record_id: str
    author: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class LeadFeedback:
    """Everything reps said about one lead: newest first."""

    record_id: str
    verdict: Verdict | None
    override: Override | None
    contacts: list[Contact]
    verdicts: list[Verdict]


@dataclass(frozen=True)
class FeedbackFrames:
    """Every verdict, override and contact as tables (created_at / updated_at as UTC timestamps), for
    the who-was-right report."""

    verdicts: pd.DataFrame
    overrides: pd.DataFrame
    contacts: pd.DataFrame

    @property
    def empty(self) -> bool:
        return not (len(self.verdicts) or len(self.overrides) or len(self.contacts))


def feedback_url(params: FeedbackParams, *, db: Path) -> str:
    """The database URL: LEADSCORE_FEEDBACK_URL, else ``feedback.url``, else SQLite at ``db`` (paths.feedback_db)."""
    return os.environ.get(URL_ENV) or params.url or sqlite_url(db)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sqlite_file(url: sa.URL) -> Path | None:
    """The file of a SQLite URL, or None for another database or SQLite in memory."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _now() -> datetime:
    return datetime.now(UTC)


def _naive_utc(at: datetime) -> datetime:
    """Stored as naive UTC to the second: SQLite keeps no offset, and PostgreSQL then agrees with it."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.replace(microsecond=0)


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _text(field: str, value: Any, *, max_len: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise FeedbackError(f"{field}: expected text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise FeedbackError(f"{field}: must not be empty")
    if len(value) > max_len:
        raise FeedbackError(f"{field}: at most {max_len:,} characters (got {len(value):,})")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise FeedbackError(f"{field}: control characters are not allowed")
    return value


def _choice(field: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise FeedbackError(f"{field}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _reasons(reasons: FeedbackReasons | Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    try:
        checked = reasons if isinstance(reasons, FeedbackReasons) else FeedbackReasons.model_validate(dict(reasons))
    except ValueError as exc:
        raise FeedbackError(f"feedback.reasons: {exc}") from None
    return {"agree": list(checked.agree), "disagree": list(checked.disagree)}


class FeedbackStore:
    """The feedback database. Open it with :meth:`open` (a URL) or :meth:`from_settings`."""

    def __init__(self, engine: Engine, *, reasons: dict[str, list[str]], clock: Callable[[], datetime] = _now
                 ) -> None:
        self.engine = engine
        self.reasons = reasons      # verdict -> the declared reasons, as the form offers them
        self._clock = clock

    # -- opening -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None, *, reasons: FeedbackReasons | Mapping[str, Sequence[str]],
             clock: Callable[[], datetime] | None = None, create: bool = True) -> FeedbackStore:
        """The database at ``url`` (None: the default SQLite file, ``data/feedback/feedback.db``), its
        tables created if missing (``create``; a SQLite file and its folder too)."""
        url = url or sqlite_url(Path("data/feedback/feedback.db"))
        try:
            parsed = sa.make_url(url)
        except (SQLAlchemyError, ValueError) as exc:
            raise FeedbackError(f"feedback.url: not a database URL ({exc})") from None
        file = _sqlite_file(parsed)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 30}
            if file is None:  # in memory: one connection, or each would see its own empty database
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"]["check_same_thread"] = False
            elif create:
                file.parent.mkdir(parents=True, exist_ok=True)
            elif not file.exists():
                raise FeedbackError(f"feedback database {file} does not exist yet")
        try:
            engine = sa.create_engine(parsed, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            hint = " (pip install 'leadscore[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
            raise FeedbackError(f"feedback.url: cannot use {parsed.render_as_string(hide_password=True)}: "
                                f"{exc}{hint}") from None
        store = cls(engine, reasons=_reasons(reasons), clock=clock or _now)
        store._prepare(create=create, shown=parsed.render_as_string(hide_password=True))
        return store

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = True) -> FeedbackStore:
        """The database of ``settings`` (:func:`feedback_url`), with its declared reasons."""
        return cls.open(feedback_url(settings.feedback, db=settings.paths.feedback_db),
                        reasons=settings.feedback.reasons, create=create)

    @classmethod
    def existing(cls, params: FeedbackParams, *, db: Path) -> FeedbackStore | None:
        """The database of ``params`` (or SQLite at ``db``) if it exists and has the feedback tables, else
        None: reading scores or outcomes never creates it."""
        url = feedback_url(params, db=db)
        file = _sqlite_file(sa.make_url(url))
        if file is not None and not file.exists():
            return None
        try:
            return cls.open(url, reasons=params.reasons, create=False)
        except FeedbackError as exc:
            if NO_TABLES in str(exc):
                return None
            raise

    def _prepare(self, *, create: bool, shown: str) -> None:
        try:
            with self.engine.begin() as conn:
                present = set(sa.inspect(conn).get_table_names())
                if not create and meta_table.name not in present:
                    raise FeedbackError(f"feedback database {shown} {NO_TABLES}")
                if meta_table.name in present:
                    row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version"))
                    found = row.scalar_one_or_none()
                    if found is not None and int(found) > SCHEMA_VERSION:
                        raise FeedbackError(f"feedback database {shown} has schema version {found}, newer than "
                                            f"this leadscore's {SCHEMA_VERSION}: upgrade leadscore (nothing was "
                                            "changed)")
                if create:
                    metadata.create_all(conn, checkfirst=True)  # adds missing tables; never drops or alters one
                    if conn.execute(sa.select(sa.func.count()).select_from(meta_table)).scalar_one() == 0:
                        conn.execute(meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        except SQLAlchemyError as exc:
            raise FeedbackError(f"feedback database {shown} cannot be opened: {exc}") from None

    @property
    def shown_url(self) -> str:
        """The database URL with any password hidden, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def _write(self, action: Callable[[Connection], Any]) -> Any:
        try:
            with self.engine.begin() as conn:
                return action(conn)
        except SQLAlchemyError as exc:
            raise FeedbackError(f"feedback database: the write failed and nothing was saved ({exc})") from None

    def _read(self, query: sa.Executable) -> list[sa.Row[Any]]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query))
        except SQLAlchemyError as exc:
            raise FeedbackError(f"feedback database: the read failed ({exc})") from None

    @property
    def schema_version(self) -> int:
        rows = self._read(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version"))
        return int(rows[0][0]) if rows else 0

    # -- users ---------------------------------------------------------------------------------------
    def add_user(self, name: str, *, password: str, owner: str, role: str = "rep") -> User:
        """A new user; ``owner`` is the CRM owner value their leads carry. The password is stored hashed."""
        name = _text("name", name, max_len=NAME_MAX)
        if not USER_NAME.match(name):
            raise FeedbackError(f"name: {name!r} may hold letters, digits and . _ @ - only, and start with a "
                                "letter or digit")
        if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise FeedbackError(f"password: between {PASSWORD_MIN} and {PASSWORD_MAX} characters")
        owner = _text("owner", owner, max_len=OWNER_MAX)
        role = _choice("role", role, ROLES)
        if self.user(name) is not None:
            raise FeedbackError(f"name: user {name!r} already exists")
        created = _naive_utc(self._clock())
        self._write(lambda conn: conn.execute(users_table.insert().values(
            name=name, password_hash=hash_password(password), owner=owner, role=role, created_at=created)))
        log.info("feedback: added %s %s (owner %s)", role, name, owner)
        return User(name=name, owner=owner, role=role, created_at=_aware(created))

    def user(self, name: str) -> User | None:
        if not isinstance(name, str) or not name.strip():
            return None
        rows = self._read(sa.select(users_table.c.name, users_table.c.owner, users_table.c.role,
                                    users_table.c.created_at).where(users_table.c.name == name.strip()))
        return None if not rows else User(name=rows[0].name, owner=rows[0].owner, role=rows[0].role,
                                          created_at=_aware(rows[0].created_at))

    def users(self) -> list[User]:
        rows = self._read(sa.select(users_table.c.name, users_table.c.owner, users_table.c.role,
                                    users_table.c.created_at).order_by(users_table.c.name))
        return [User(name=r.name, owner=r.owner, role=r.role, created_at=_aware(r.created_at)) for r in rows]

    def has_users(self) -> bool:
        return bool(self._read(sa.select(users_table.c.name).limit(1)))

    def check_password(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (as slow for an unknown name as for a wrong password)."""
        stored = None
        if isinstance(name, str) and name.strip():
            rows = self._read(sa.select(users_table.c.password_hash).where(users_table.c.name == name.strip()))
            stored = rows[0][0] if rows else None
        if not verify_password(password if isinstance(password, str) else "", stored):
            return None
        return self.user(name)

    def _author(self, author: str) -> str:
        author = _text("author", author, max_len=NAME_MAX)
        if self.has_users() and self.user(author) is None:
            raise FeedbackError(f"author: {author!r} is not a user of the feedback database")
        return author

    # -- writes --------------------------------------------------------------------------------------
    def add_verdict(self, record_id: str, *, author: str, verdict: str, reason: str, note: str = "", score: int,
                    grade: str, next_step: str, model_version: str) -> int:
        """A rep agrees or disagrees with the model's score, with a declared reason; the model's values at
        the time are kept with it. Returns the verdict's id."""
        verdict = _choice("verdict", verdict, VERDICTS)
        values: dict[str, Any] = {
            "record_id": _text("record_id", record_id, max_len=ID_MAX),
            "author": self._author(author),
            "verdict": verdict,
            "reason": self._reason(verdict, reason),
            "note": _text("note", note, max_len=NOTE_MAX, required=False),
            "score": self._score(score),
            "grade": _choice("grade", grade, GRADES),
            "next_step": _choice("next_step", next_step, NEXT_STEPS),
            "model_version": _text("model_version", model_version, max_len=200, required=False),
            "created_at": _naive_utc(self._clock()),
        }
        result = self._write(lambda conn: conn.execute(verdicts_table.insert().values(**values)))
        return int(result.inserted_primary_key[0])

    @staticmethod
    def _score(score: Any) -> int:
        if isinstance(score, bool) or not isinstance(score, int | float) or score != int(score):
            raise FeedbackError(f"score: expected a whole number from 0 to 100, got {score!r}")
        if not 0 <= int(score) <= 100:
            raise FeedbackError(f"score: {score!r} is outside 0-100")
        return int(score)

    def _reason(self, verdict: str, reason: Any) -> str:
        allowed = self.reasons[verdict]
        by_key = {r.strip().casefold(): r for r in allowed}
        key = reason.strip().casefold() if isinstance(reason, str) else None
        if key not in by_key:
            raise FeedbackError(f"reason: {reason!r} is not a declared reason to {verdict} "
                                f"({', '.join(allowed)}; feedback.reasons.{verdict} in params.yaml)")
        return by_key[key]

    def set_override(self, record_id: str, *, author: str, next_step: str | None = None, grade: str | None = None,
                     model_next_step: str, model_grade: str, note: str = "") -> Override:
        """The rep's next step and/or grade for a lead, kept until :meth:`clear_override`: scoring never
        overwrites it. ``model_*``: the model's values now, kept beside the rep's. A second call replaces
        the first (with the model's values of its own time)."""
        if next_step is None and grade is None:
            raise FeedbackError("next_step, grade: give at least one to override (or clear the override)")
        override = Override(
            record_id=_text("record_id", record_id, max_len=ID_MAX),
            next_step=None if next_step is None else _choice("next_step", next_step, NEXT_STEPS),
            grade=None if grade is None else _choice("grade", grade, GRADES),
            model_next_step=_choice("model_next_step", model_next_step, NEXT_STEPS),
            model_grade=_choice("model_grade", model_grade, GRADES),
            author=self._author(author), note=_text("note", note, max_len=NOTE_MAX, required=False),
            updated_at=_naive_utc(self._clock()))
        values = {c.name: getattr(override, c.name) for c in overrides_table.columns}

        def upsert(conn: Connection) -> None:
            conn.execute(overrides_table.delete().where(overrides_table.c.record_id == override.record_id))
            conn.execute(overrides_table.insert().values(**values))

        self._write(upsert)
        log.info("feedback: %s overrode %s (next step %s, grade %s)", override.author, override.record_id,
                 override.next_step or "model's", override.grade or "model's")
        return Override(**{**values, "updated_at": _aware(override.updated_at)})

    def clear_override(self, record_id: str, *, author: str) -> bool:
        """Remove a lead's override: the model's next step and grade apply again. False: there was none."""
        record_id = _text("record_id", record_id, max_len=ID_MAX)
        author = self._author(author)
        result = self._write(lambda conn: conn.execute(
            overrides_table.delete().where(overrides_table.c.record_id == record_id)))
        if result.rowcount:
            log.info("feedback: %s cleared the override of %s", author, record_id)
        return bool(result.rowcount)

    def log_contact(self, record_id: str, *, author: str, note: str = "") -> int:
        """A rep contacted the lead. Returns the contact's id."""
        values = {"record_id": _text("record_id", record_id, max_len=ID_MAX), "author": self._author(author),
                  "note": _text("note", note, max_len=NOTE_MAX, required=False),
                  "created_at": _naive_utc(self._clock())}
        result = self._write(lambda conn: conn.execute(contacts_table.insert().values(**values)))
        return int(result.inserted_primary_key[0])

    # -- reads ---------------------------------------------------------------------------------------
    def for_lead(self, record_id: str) -> LeadFeedback:
        """The lead's latest verdict, its override, its contacts and every verdict, newest first."""
        vt, ct = verdicts_table, contacts_table
        verdicts = [Verdict(**{**r._asdict(), "created_at": _aware(r.created_at)}) for r in self._read(
            sa.select(vt).where(vt.c.record_id == record_id).order_by(vt.c.created_at.desc(), vt.c.id.desc()))]
        contacts = [Contact(**{**r._asdict(), "created_at": _aware(r.created_at)}) for r in self._read(
            sa.select(ct).where(ct.c.record_id == record_id).order_by(ct.c.created_at.desc(), ct.c.id.desc()))]
        rows = self._read(sa.select(overrides_table).where(overrides_table.c.record_id == record_id))
        override = Override(**{**rows[0]._asdict(), "updated_at": _aware(rows[0].updated_at)}) if rows else None
        return LeadFeedback(record_id=record_id, verdict=verdicts[0] if verdicts else None, override=override,
                            contacts=contacts, verdicts=verdicts)

    def frames(self, record_ids: Iterable[str] | None = None) -> FeedbackFrames:
        """Every verdict, override and contact (of ``record_ids`` only, if given) as tables."""
        ids = None if record_ids is None else sorted({str(r) for r in record_ids})

        def frame(table: sa.Table, time_column: str) -> pd.DataFrame:
            query = sa.select(table)
            if ids is not None:
                query = query.where(table.c.record_id.in_(ids))
            out = pd.DataFrame([r._asdict() for r in self._read(query)], columns=[c.name for c in table.columns])
            out[time_column] = pd.to_datetime(out[time_column]).dt.tz_localize(UTC)
            return out

        return FeedbackFrames(verdicts=frame(verdicts_table, "created_at"),
                              overrides=frame(overrides_table, "updated_at"),
                              contacts=frame(contacts_table, "created_at"))

    def table(self, record_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per lead with feedback (of ``record_ids`` only, if given): record_id and
        :data:`REP_COLUMNS` (the latest verdict, the override with the model's values at its time, the
        last contact and the number of contacts), sorted by record_id. Times are ISO UTC strings."""
        return feedback_table(self.frames(record_ids))


def _iso(times: pd.Series) -> pd.Series:
    return times.dt.strftime(TIME_FORMAT).astype(object).where(times.notna(), None)


def feedback_table(frames: FeedbackFrames) -> pd.DataFrame:
    """:meth:`FeedbackStore.table` of already-read frames."""
    v, o, c = frames.verdicts, frames.overrides, frames.contacts
    latest = v.sort_values(["created_at", "id"], kind="stable").drop_duplicates("record_id", keep="last")
    parts = [
        pd.DataFrame({"rep_verdict": latest["verdict"].to_numpy(), "rep_reason": latest["reason"].to_numpy(),
                      "rep_note": latest["note"].to_numpy(), "rep_verdict_by": latest["author"].to_numpy(),
                      "rep_verdict_at": _iso(latest["created_at"]).to_numpy()},
                     index=latest["record_id"].to_numpy()),
        pd.DataFrame({"rep_next_step": o["next_step"].to_numpy(), "rep_grade": o["grade"].to_numpy(),
                      "override_model_next_step": o["model_next_step"].to_numpy(),
                      "override_model_grade": o["model_grade"].to_numpy(), "override_by": o["author"].to_numpy(),
                      "override_at": _iso(o["updated_at"]).to_numpy(), "override_note": o["note"].to_numpy()},
                     index=o["record_id"].to_numpy()),
    ]
    by_lead = c.groupby("record_id", sort=True)
    parts.append(pd.DataFrame({"last_contacted_at": _iso(by_lead["created_at"].max()).to_numpy(),
                               "contacts": by_lead["id"].size().to_numpy()},
                              index=by_lead["created_at"].max().index.to_numpy()))
    ids = sorted({str(i) for part in parts for i in part.index})
    columns: dict[str, Any] = {"record_id": pd.Series(ids, dtype=object)}
    for part in parts:
        found = part.reindex(ids)
        for column in part.columns:
            columns[column] = pd.Series([None if _missing(x) else x for x in found[column].to_numpy(dtype=object)],
                                        dtype=object)
    columns["contacts"] = pd.array([0 if x is None else int(x) for x in columns["contacts"]], dtype="Int64")
    return pd.DataFrame(columns)[["record_id", *REP_COLUMNS]]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
