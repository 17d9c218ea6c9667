"""The web app behind `leadscore serve` (Starlette, Jinja templates, assets served from this package:
no CDN, no inline script). Every page is autoescaped; every write is a POST with the session's CSRF
token, validated by the feedback store, and allowed only on a lead the viewer may see."""

from __future__ import annotations

import getpass
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.errors import LeadscoreError
from pipeline.feedback import NOTE_MAX, REP_COLUMNS, FeedbackStore
from pipeline.modeling.metrics import model_verdict
from pipeline.reporting.board import NEXT_STEPS, UNPROMOTED, lead_of
from pipeline.serve.auth import Viewer, csrf_ok, csrf_token
from pipeline.serve.leads import GRADES, PAGE_SIZE, LeadIndex, Query

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ServeConfig:
    scores: Path                       # a scores .parquet (the score stage's, or `score --export`'s)
    history: Callable[[str, int], pd.DataFrame] | None  # record_id, runs -> the lead's last runs
    sign_in: bool                      # sign-in required (bound beyond loopback, or asked for)
    secret: str | None = None          # session signing key; None: a random one (sessions end on restart)
    history_runs: int = 5
    title: str = "Lead board"
    notes: tuple[str, ...] = ()        # shown above the list: who was right, the model or the reps
    verdict: str | None = None         # the verdict on the scoring model, when it warns (board's banner)


def create_app(config: ServeConfig, store: FeedbackStore) -> Starlette:
    index = LeadIndex(config.scores)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, autoescape=select_autoescape(default_for_string=True, default=True))
    env.globals.update(next_steps=NEXT_STEPS, grades=GRADES, urlencode=urlencode)
    local = Viewer(name=_local_user(), owner=None, role="manager", signed_in=False)

    def viewer(request: Request) -> Viewer | None:
        if not config.sign_in:
            return local
        name = request.session.get("user")
        user = store.user(name) if isinstance(name, str) else None
        if user is None:
            return None
        return Viewer(name=user.name, owner=user.owner, role=user.role, signed_in=True)

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            title=config.title, viewer=context.pop("who", None), csrf=csrf_token(request.session),
            flash=request.session.pop("flash", None), sign_in=config.sign_in, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def to_login(request: Request) -> Response:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path + (
            "?" + request.url.query if request.url.query else "")}), status_code=303)

    def leads(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
        who = viewer(request)
        if who is None:
            return to_login(request)
        try:
            query = Query.of(dict(request.query_params))
        except ValueError as exc:
            return page(request, "error.html.j2", status=400, who=who, message=str(exc))
        overrides = store.table()
        result = index.search(query, owner=who.scope, overrides=overrides)
        feedback = overrides.set_index("record_id") if len(overrides) else None
        rows = [_list_row(r, feedback) for r in result.rows]
        return page(request, "leads.html.j2", who=who, query=query, result=result, rows=rows, page_size=PAGE_SIZE,
                    notes=[*_notes(index.frame(), config.verdict), *config.notes])

    def lead(request: Request) -> Response:
        who = viewer(request)
        if who is None:
            return to_login(request)
        record_id = request.query_params.get("id", "")
        row = index.lead(record_id)
        if row is None or not who.may_see(row):  # another rep's lead is "not found", not "forbidden"
            return page(request, "error.html.j2", status=404, who=who, message=f"No lead {record_id!r} to show.")
        card = lead_of(row, index=0)
        runs = config.history(record_id, config.history_runs) if config.history else None
        return page(request, "lead.html.j2", who=who, row=row, card=card, feedback=store.for_lead(record_id),
                    notes=_notes(index.frame(), config.verdict),
                    history=_runs(runs), reasons=store.reasons, note_max=NOTE_MAX)

    async def write(request: Request) -> Response:
        who = viewer(request)
        if who is None:
            return to_login(request)
        values = await _form(request)
        if not csrf_ok(request.session, values.get("csrf")):
            return PlainTextResponse("The form expired or did not come from this app; reload the page and try again.",
                                     status_code=403, headers=SECURITY_HEADERS)
        record_id = values.get("record_id", "")
        row = index.lead(record_id)
        if row is None or not who.may_see(row):
            return page(request, "error.html.j2", status=404, who=who, message=f"No lead {record_id!r} to change.")
        action = request.path_params["action"]
        note = values.get("note", "")[:NOTE_MAX]
        try:
            if action == "verdict":
                verdict = values.get("verdict", "")
                reason = values.get(f"reason_{verdict}", "")
                store.add_verdict(record_id, author=who.name, verdict=verdict, reason=reason, note=note,
                                  score=int(row["score"]), grade=str(row["grade"]),
                                  next_step=str(row["next_step"]), model_version=str(row.get("model_version") or ""))
                message = f"Saved: you {verdict} with the score."
            elif action == "override":
                step, grade = values.get("next_step") or None, values.get("grade") or None
                if step is None and grade is None:
                    raise ValueError("choose a next step or a grade to override, or clear the override")
                store.set_override(record_id, author=who.name, next_step=step, grade=grade,
                                   model_next_step=str(row["next_step"]), model_grade=str(row["grade"]), note=note)
                message = "Saved: your override stays until you clear it; the model's value is kept beside it."
            elif action == "clear":
                store.clear_override(record_id, author=who.name)
                message = "Override cleared: the model's next step and grade apply again."
            elif action == "contacted":
                store.log_contact(record_id, author=who.name, note=note)
                message = "Saved: contact logged."
            else:
                return page(request, "error.html.j2", status=404, who=who, message="No such action.")
        except (LeadscoreError, ValueError) as exc:
            request.session["flash"] = {"kind": "error", "text": str(exc)}
        else:
            request.session["flash"] = {"kind": "ok", "text": message}
        return RedirectResponse("/lead?" + urlencode({"id": record_id}), status_code=303)

    async def login(request: Request) -> Response:
        target = _safe_next(request.query_params.get("next"))
        if not config.sign_in:
            return RedirectResponse(target, status_code=303)
        if request.method == "GET":
            return page(request, "login.html.j2", target=target, error=None)
        values = await _form(request)
        if not csrf_ok(request.session, values.get("csrf")):
            return page(request, "login.html.j2", status=403, target=target, error="The form expired; try again.")
        user = store.check_password(values.get("name", "")[:200], values.get("password", "")[:1000])
        if user is None:
            return page(request, "login.html.j2", status=401, target=target, error="Unknown name or wrong password.")
        request.session.clear()  # a new session on sign-in: no fixation
        request.session["user"] = user.name
        log.info("serve: %s signed in", user.name)
        return RedirectResponse(_safe_next(values.get("next")), status_code=303)

    async def logout(request: Request) -> Response:
        if csrf_ok(request.session, (await _form(request)).get("csrf")):
            request.session.clear()
        return RedirectResponse("/login", status_code=303)

    def health(_: Request) -> Response:
        return PlainTextResponse(f"ok {len(index.frame())} leads")

    routes = [
        Route("/", leads),
        Route("/lead", lead),
        Route("/lead/{action}", write, methods=["POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/health", health),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=config.secret or secrets.token_urlsafe(32),
                             session_cookie="leadscore_session", same_site="strict", max_age=12 * 3600)]
    return Starlette(routes=routes, middleware=middleware)


FORM_MAX_BYTES = 64 * 1024


async def _form(request: Request) -> dict[str, str]:
    """A posted form (application/x-www-form-urlencoded, at most 64 KB), the first value of each field."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True).items()}


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def _safe_next(target: str | None) -> str:
    """Only a path of this app: never another site (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _list_row(row: dict[str, Any], feedback: pd.DataFrame | None) -> dict[str, Any]:
    card = lead_of(row, index=0)
    rep: dict[str, Any] = dict.fromkeys(REP_COLUMNS)
    if feedback is not None and row["record_id"] in feedback.index:
        found = feedback.loc[row["record_id"]]
        if isinstance(found, pd.Series):
            rep.update({k: (None if _blank(v) else v) for k, v in found.items()})
    return {"row": row, "card": card, "rep": rep}


def _blank(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _runs(runs: pd.DataFrame | None) -> list[dict[str, Any]]:
    if runs is None or not len(runs):
        return []
    out = []
    for r in runs.to_dict("records"):
        moved = r.get("score_change")
        out.append({"scored_at": str(r.get("scored_at") or "")[:10], "score": r.get("score"), "grade": r.get("grade"),
                    "change": None if moved is None or pd.isna(moved) else int(moved), "trend": r.get("trend"),
                    "model": r.get("model_version")})
    return out


def _notes(frame: pd.DataFrame, verdict: str | None) -> list[str]:
    """The verdict on the scoring model, in the board's words: the one given (``verdict``), else for scores
    that carry model_status unpromoted, the verdict on a model that failed the gates."""
    if verdict:
        return [verdict]
    unpromoted = "model_status" in frame.columns and bool((frame["model_status"] == UNPROMOTED).any())
    return [model_verdict(None, promoted=False).advice] if unpromoted else []
