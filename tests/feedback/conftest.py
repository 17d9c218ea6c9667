"""A feedback database in a temporary SQLite file, with a clock the test moves, and two users."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.feedback import FeedbackStore

REASONS = {"agree": ["strong fit", "right timing"], "disagree": ["not a fit", "no budget", "timing wrong"]}


class Clock:
    """A settable clock: ``clock.at = ...`` or ``clock.tick(days=1)``."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def tick(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at a tiny cost (the hash records its own parameters, so checking still works): a real one
    takes about 0.2 s here, and every store fixture adds two users."""
    from pipeline.feedback import passwords

    monkeypatch.setattr(passwords, "N", 2 ** 8)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 1, 5, 9, 30, tzinfo=UTC))


@pytest.fixture
def make_store(tmp_path: Path, clock: Clock) -> Callable[..., FeedbackStore]:
    def make(name: str = "feedback.db", *, users: bool = True) -> FeedbackStore:
        store = FeedbackStore.open(f"sqlite:///{tmp_path / name}", reasons=REASONS, clock=clock)
        if users and not store.has_users():
            store.add_user("ana", password="ana-secret-1", owner="Ana Lima")
            store.add_user("maria", password="maria-secret-3", owner="Maria Rossi", role="manager")
        return store

    return make


@pytest.fixture
def store(make_store: Callable[..., FeedbackStore]) -> FeedbackStore:
    return make_store()
