"""Synthetic CRM export drawn from a known generative model.

The export is relational, as a CRM or warehouse dump would be: accounts, leads (contacts),
deals (one opportunity per lead) and activity events. Whether a deal is won follows a known
logistic model of what a pipeline can observe:

* ICP fit: industry, company size and region;
* seniority of the contact (parsed later from a free-text job title);
* intent: exponentially decayed activity (half-life 30 days) before the decision date,
  weighted by event type, and a recent demo request;
* BANT fields: stated budget against deal size, purchase timeline, stated need;
* lead source and subsidiary status;
* two interactions: ICP fit x intent, and decision-maker x budget confirmed;
* noise: the outcome is a Bernoulli draw from the true probability.

The true probability of every lead (open ones too) goes to ``paths.ground_truth``, which the
pipeline never reads; tests use it for the oracle AUC, the best any model could reach.

The export also carries what real ones do: industry aliases and typos, numbers written as
"1,200" or "$3.5M", mixed-case stage names, a column filled only after the deal closed
(``csm_assigned``, which leaks the outcome), activity after the decision date, and a share of
dirty rows (bad dates, duplicates, orphans, unknown stages) for ingest to quarantine.

Everything is vectorised NumPy/Arrow and deterministic by seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.config import GenerateParams
from pipeline.contracts.files import TRUTH_FILE
from pipeline.errors import DataError
from pipeline.io.files import atomic_path, read_json, sha256_file, write_json

log = logging.getLogger(__name__)

DAY = np.timedelta64(1, "D")

# The columns of the export, per table (synthetic.yaml maps them onto fields).
EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id", "company_name", "industry", "employees", "annual_revenue", "country", "founded_year",
                 "parent_company", "account_owner"),
    "leads": ("lead_id", "account_id", "first_name", "last_name", "email", "job_title", "lead_source", "created_date",
              "stated_budget", "purchase_timeline", "stated_need"),
    "deals": ("deal_id", "lead_id", "created_date", "closed_date", "stage", "amount", "csm_assigned"),
    "events": ("event_id", "lead_id", "event_type", "timestamp"),
}

# The sales reps who own the synthetic accounts (display only).
ACCOUNT_OWNERS = ("Ana Lima", "Ben Okafor", "Chloé Martin", "Dev Patel", "Eva Novak", "Farid Haddad")

# (canonical industry, weight, raw spellings seen in exports; the first is the usual one)
INDUSTRIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("software", 0.18, ("Software", "software ", "SaaS", "Sofware", "Computer Software")),
    ("financial services", 0.12, ("Financial Services", "Finance", "Fin. Services", "financial svcs")),
    ("healthcare", 0.11, ("Healthcare", "Health Care", "helthcare", "Hospital & Health Care")),
    ("manufacturing", 0.13, ("Manufacturing", "manufacturing", "Manufactoring", "Industrial Mfg")),
    ("retail", 0.11, ("Retail", "RETAIL", "Retail & E-commerce", "retial")),
    ("education", 0.08, ("Education", "Higher Education", "educaton")),
    ("telecommunications", 0.07, ("Telecommunications", "Telecom", "telecomunications")),
    ("energy", 0.06, ("Energy", "Oil & Energy", "enrgy")),
    ("government", 0.06, ("Government", "Public Sector", "govt")),
    ("media", 0.08, ("Media", "Media & Entertainment", "meida")),
)
ICP_INDUSTRIES = frozenset({"software", "financial services", "healthcare"})
ICP_EMPLOYEES = (50, 5000)
ICP_REGIONS = frozenset({"NA", "EU"})

# (country as written, region, weight)
COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("United States", "NA", 0.34), ("Canada", "NA", 0.06), ("United Kingdom", "EU", 0.10),
    ("Germany", "EU", 0.08), ("France", "EU", 0.06), ("Netherlands", "EU", 0.04),
    ("Brazil", "LATAM", 0.06), ("Mexico", "LATAM", 0.04), ("India", "APAC", 0.09),
    ("Australia", "APAC", 0.05), ("Japan", "APAC", 0.04), ("Singapore", "APAC", 0.04),
)

SENIORITY_LEVELS = ("c_level", "vp", "director", "manager", "ic")
SENIORITY_WEIGHTS = (0.06, 0.10, 0.18, 0.26, 0.40)
SENIORITY_EFFECT = {"c_level": 0.5, "vp": 0.8, "director": 0.5, "manager": 0.0, "ic": -0.6}
# Free-text job titles as contacts type them, by true seniority.
TITLES: dict[str, tuple[str, ...]] = {
    "c_level": ("CEO", "Chief Executive Officer", "CTO", "Chief Technology Officer", "CFO",
                "Chief Financial Officer", "COO", "CMO", "Chief Revenue Officer", "Founder & CEO",
                "Co-Founder", "Chief Information Officer"),
    "vp": ("VP of Sales", "VP Sales", "Vice President, Marketing", "VP Engineering",
           "SVP Operations", "Vice President of Finance", "EVP, IT", "VP, Data & Analytics",
           "Senior Vice President Sales"),
    "director": ("Director of Sales", "Sales Director", "Dir. Marketing", "Director, Engineering",
                 "Head of IT", "Head of Operations", "Sr. Director Finance", "Director of Data Science",
                 "Head of Growth"),
    "manager": ("Sales Manager", "Marketing Manager", "Engineering Manager", "IT Manager",
                "Mgr, Operations", "Finance Manager", "Team Lead, Sales", "Product Manager",
                "Procurement Manager"),
    "ic": ("Account Executive", "Sr. Data Eng.", "Software Engineer", "Marketing Specialist",
           "Financial Analyst", "Operations Coordinator", "IT Administrator", "Sales Rep",
           "Data Analyst", "Intern", "Business Analyst", "Jr. Developer", "Consultant"),
}

# (source as written, effect on the log-odds, weight)
LEAD_SOURCES: tuple[tuple[str, float, float], ...] = (
    ("Website", 0.0, 0.30), ("Referral", 0.5, 0.10), ("Event", 0.2, 0.12),
    ("Paid Search", -0.2, 0.18), ("Outbound", -0.4, 0.20), ("Partner", 0.3, 0.10),
)
TIMELINES: tuple[tuple[str, float, float], ...] = (
    ("< 3 months", 0.7, 0.18), ("3-6 months", 0.3, 0.22), ("6-12 months", -0.2, 0.20),
    ("> 12 months", -0.7, 0.12), ("", 0.0, 0.28),
)
NEEDS: tuple[tuple[str, float, float], ...] = (
    ("High", 0.6, 0.25), ("Medium", 0.1, 0.30), ("Low", -0.6, 0.20), ("", 0.0, 0.25),
)

# Event labels as the export writes them; ingest folds them to snake_case types.
EVENT_LABELS = ("Pricing Page View", "Demo Request", "Webinar Attended", "Content Download",
                "Email Click", "Email Open", "Blog View")
EVENT_WEIGHT = np.array([2.0, 3.0, 1.0, 0.7, 0.5, 0.1, 0.2])  # in the decayed intent score
HOT_MIX = np.array([0.22, 0.10, 0.12, 0.14, 0.16, 0.14, 0.12])
COLD_MIX = np.array([0.04, 0.01, 0.05, 0.10, 0.10, 0.45, 0.25])
POST_CLOSE_MIX = np.array([0.0, 0.0, 0.25, 0.35, 0.10, 0.30, 0.0])
HALF_LIFE_DAYS = 30.0
DEMO_RECENT_DAYS = 14

OPEN_STAGES = ("Qualification", "Discovery", "Proposal", "Negotiation")
WON_SPELLINGS = ("Closed Won", "Closed Won", "Closed Won", "closed won", "Won", "CLOSED-WON ")
LOST_SPELLINGS = ("Closed Lost", "Closed Lost", "Closed Lost", "closed lost", "Lost", " Closed-Lost")

INTERCEPT = -2.2
FLAT_ID_BASE = 100_001
FLAT_FILE = "contacts_flat.csv"
EVENT_CHUNK = 1 << 22  # events drawn and counted at a time
EVENT_ROWS = 1 << 20   # events turned into text and written at a time
EVENTS_SCHEMA = pa.schema([("event_id", pa.int64()), ("lead_id", pa.string()), ("event_type", pa.string()),
                           ("timestamp", pa.string())])
MANIFEST_FILE = ".generated.json"  # in paths.raw: the sha256 of each file the generator wrote there

_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Hooli", "Vandelay",
          "Soylent", "Tyrell", "Cyberdyne", "Aperture", "Massive", "Dynamic", "Blue", "Red", "North",
          "Summit", "Apex", "Vertex", "Pioneer", "Quantum", "Nimbus", "Orion", "Atlas", "Zenith",
          "Helix", "Bright", "Silver", "Granite", "Cedar", "Harbor", "Falcon", "Lumen", "Nova")
_SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Systems", "Labs", "Holdings", "Corp", "SA")
_FIRST = ("Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal",
          "Kofi", "Lena", "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
          "Uma", "Victor", "Wei", "Ximena", "Yusuf", "Zoe")
_LAST = ("Smith", "Garcia", "Müller", "Nguyen", "Okafor", "Rossi", "Kim", "Silva", "Dubois",
         "Tanaka", "Patel", "Cohen", "Novak", "Larsen", "O'Brien", "Haddad", "Ivanova", "Mensah")


@dataclass(frozen=True)
class SyntheticExport:
    """A generated export: the four raw tables plus the ground truth the pipeline never reads."""

    accounts: pd.DataFrame
    leads: pd.DataFrame
    deals: pd.DataFrame
    events: SyntheticEvents
    truth: pd.DataFrame
    flat: pd.DataFrame   # the same leads as one flat contacts report (HubSpot-style headers)


def _pick(rng: np.random.Generator, n: int, weights: np.ndarray | Sequence[float]) -> np.ndarray:
    """Indices drawn from a categorical distribution, vectorised."""
    cdf = np.cumsum(np.asarray(weights, dtype=float))
    return np.searchsorted(cdf / cdf[-1], rng.random(n), side="right")


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _dirty_index(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    k = round(n * fraction)
    return rng.choice(n, size=k, replace=False) if k else np.array([], dtype=int)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _accounts(rng: np.random.Generator, p: GenerateParams) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    n = p.n_accounts
    ind = _pick(rng, n, [w for _, w, _ in INDUSTRIES])
    # The usual spelling most of the time; an alias or typo otherwise.
    spelling = np.where(rng.random(n) < 0.7, 0, rng.integers(1, 99, n))
    industry_raw = np.array([INDUSTRIES[i][2][s % len(INDUSTRIES[i][2])] for i, s in zip(ind, spelling, strict=True)],
                            dtype=object)
    employees = np.clip(np.round(rng.lognormal(5.0, 1.6, n)), 1, 250_000).astype(np.int64)
    revenue = np.round(employees * 150_000 * rng.lognormal(0.0, 0.5, n), -3)
    country = _pick(rng, n, [w for _, _, w in COUNTRIES])
    founded = np.clip(2025 - np.round(rng.gamma(2.0, 12.0, n)), 1900, 2024).astype(np.int64)
    names = np.char.add(np.char.add(np.char.add(
        np.array(_WORDS)[rng.integers(0, len(_WORDS), n)], " "),
        np.array(_WORDS)[rng.integers(0, len(_WORDS), n)]), " ")
    names = np.char.add(names, np.array(_SUFFIXES)[rng.integers(0, len(_SUFFIXES), n)])
    names = np.char.add(np.char.add(names, " #"), np.arange(1, n + 1).astype(str))
    has_parent = rng.random(n) < 0.22
    parent = np.where(has_parent, names[rng.integers(0, n, n)], "")

    frame = pd.DataFrame({
        "account_id": _ids("A", n, 7),
        "company_name": names.astype(object),
        "industry": industry_raw,
        "employees": employees.astype(str).astype(object),
        "annual_revenue": revenue.astype(np.int64).astype(str).astype(object),
        "country": np.array([c for c, _, _ in COUNTRIES], dtype=object)[country],
        "founded_year": founded,
        "parent_company": parent.astype(object),
        # The sales rep who owns the account: display only (a rep's "my leads"), never a feature.
        # Assigned by position, not drawn, so adding it changed no other value of the export.
        "account_owner": np.array(ACCOUNT_OWNERS, dtype=object)[np.arange(n) % len(ACCOUNT_OWNERS)],
    })
    # CRM number formats: thousands separators and "$3.5M".
    fancy = rng.random(n) < 0.05
    frame.loc[fancy, "employees"] = [f"{v:,}" for v in employees[fancy]]
    fancy = rng.random(n) < 0.05
    frame.loc[fancy, "annual_revenue"] = [f"${v / 1e6:.1f}M" for v in revenue[fancy]]

    region = np.array([r for _, r, _ in COUNTRIES])[country]
    industry = np.array([c for c, _, _ in INDUSTRIES])[ind]
    icp = (np.isin(industry, list(ICP_INDUSTRIES)).astype(float)
           + ((employees >= ICP_EMPLOYEES[0]) & (employees <= ICP_EMPLOYEES[1]))
           + np.isin(region, list(ICP_REGIONS))) / 3.0
    truth = {"icp_fit": icp, "subsidiary": has_parent.astype(float), "employees": employees.astype(float)}
    return frame, truth


def _truncated_exponential(rng: np.random.Generator, scale: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Draws of an exponential with ``scale``, conditioned to fall in (0, upper)."""
    u = rng.random(scale.shape[0])
    return -scale * np.log1p(-u * (1.0 - np.exp(-upper / scale)))


def generate(*, params: GenerateParams, seed: int) -> SyntheticExport:
    """Draw a synthetic export. Same params and seed, same export, byte for byte."""
    rng = np.random.default_rng(seed)
    scale = params.signal_scale
    accounts, acc = _accounts(rng, params)

    n = params.n_leads
    start = np.datetime64(params.start_date, "D")
    # The world runs to its horizon; the export shows it as it stood on the export date. With a later
    # horizon, two export dates are two exports of one world: what was closed stays closed with the
    # same outcome, open deals close, new leads arrive.
    export = np.datetime64(params.export_date, "D")
    horizon = np.datetime64(params.world_end_date or params.export_date, "D")
    span_days = int((horizon - start) / DAY)

    # Leads: a few accounts hold many contacts (Zipf-like), most hold one or two.
    acc_idx = np.minimum(rng.zipf(1.6, n) - 1, params.n_accounts - 1)
    acc_idx = (acc_idx + rng.integers(0, params.n_accounts, n)) % params.n_accounts
    seniority = _pick(rng, n, SENIORITY_WEIGHTS)
    title_pick = rng.integers(0, 1000, n)
    titles = np.array([TITLES[SENIORITY_LEVELS[s]][t % len(TITLES[SENIORITY_LEVELS[s]])]
                       for s, t in zip(seniority, title_pick, strict=True)], dtype=object)
    casing = rng.random(n)
    titles = np.where(casing < 0.05, np.char.lower(titles.astype(str)).astype(object), titles)
    titles = np.where(casing > 0.97, "", titles)
    source = _pick(rng, n, [w for _, _, w in LEAD_SOURCES])
    timeline = _pick(rng, n, [w for _, _, w in TIMELINES])
    need = _pick(rng, n, [w for _, _, w in NEEDS])
    created = start + rng.integers(0, span_days - 7, n) * DAY

    # Deals: opened a few days after the lead; decided after a sales cycle. Undecided by the
    # export date means open: those are the leads to score.
    deal_created = np.minimum(created + np.round(rng.gamma(2.0, 4.0, n)).astype(np.int64) * DAY, horizon - DAY)
    cycle = np.round(rng.gamma(2.5, 25.0, n) + 7).astype(np.int64)
    decided = deal_created + cycle * DAY
    # In the world, activity runs up to the decision (or the horizon); the export sees what happened
    # before its date, and calls a deal undecided then open.
    as_of = np.where(decided >= horizon, horizon, decided)
    is_open = np.asarray(decided >= export, dtype=bool)
    export_as_of = np.where(is_open, export, decided)
    seen_lead, seen_deal = created < export, deal_created < export
    amount = np.round(np.sqrt(acc["employees"][acc_idx]) * 1500 * rng.lognormal(0, 0.4, n), -2)
    budget_known = rng.random(n) < 0.65
    budget = np.where(budget_known, np.round(amount * rng.lognormal(0.0, 0.45, n), -3), np.nan)

    # Activity before the as-of date: heterogeneous volume, and a hot or cold mix of types.
    window = np.maximum((as_of - created) / DAY, 1.0).astype(float)
    volume = rng.gamma(1.2, 1.0 / 1.2, n) * (0.6 + 0.8 * acc["icp_fit"][acc_idx])
    heat = rng.beta(1.2, 3.0, n)
    counts = rng.poisson(params.events_per_lead * volume * np.minimum(window / 60.0, 1.5))
    n_events = int(counts.sum())
    log.info("drawing %d activity events for %d leads", n_events, n)
    # Every event array is drawn and used in chunks, in the order of one vectorised draw (a chunk of
    # rng.random is the next stretch of the same stream), so the export is the same at any chunk size.
    ev_lead = np.repeat(np.arange(n, dtype=np.int32), counts)
    is_hot = np.empty(n_events, dtype=bool)
    for at in _chunks(n_events):
        is_hot[at] = rng.random(at.stop - at.start) < heat[ev_lead[at]]
    ev_type = np.empty(n_events, dtype=np.int8)
    for at in _chunks(n_events):
        ev_type[at] = _pick(rng, at.stop - at.start, HOT_MIX)
    for at in _chunks(n_events):
        ev_type[at] = np.where(is_hot[at], ev_type[at], _pick(rng, at.stop - at.start, COLD_MIX))
    del is_hot
    recency_scale = 15.0 + 120.0 * (1.0 - heat)
    # What the export holds of the activity: events before the export date. The flat report counts
    # them as of each lead's decision, or the export date while it is open.
    report_shift = ((as_of - export_as_of) / DAY).astype(float)
    report = _ReportCounts(n)
    decayed = np.zeros(n)
    demo_recent = np.zeros(n, dtype=bool)
    ev_ts = np.empty(n_events, dtype=np.int64)  # seconds since 1970
    for at in _chunks(n_events):
        lead, kind = ev_lead[at], ev_type[at]
        age_days = _truncated_exponential(rng, recency_scale[lead], window[lead])
        age_days = np.maximum(age_days, 1.0 / 86_400)  # strictly before the as-of instant
        decayed += np.bincount(lead, weights=EVENT_WEIGHT[kind] * 0.5 ** (age_days / HALF_LIFE_DAYS), minlength=n)
        demo_recent |= np.bincount(lead, weights=(kind == 1) & (age_days <= DEMO_RECENT_DAYS), minlength=n) > 0
        ev_ts[at] = (as_of[lead].astype("datetime64[s]")
                     - np.round(age_days * 86_400).astype("timedelta64[s]")).astype(np.int64)
        report_age = age_days - report_shift[lead]
        seen = report_age > 0
        report.add(lead[seen], kind[seen], report_age[seen])

    # The known outcome model.
    icp = acc["icp_fit"][acc_idx]
    intent = np.log1p(decayed)
    decision_maker = seniority <= 1
    budget_ok = budget_known & (np.nan_to_num(budget) >= 0.8 * amount)
    budget_short = budget_known & ~budget_ok
    logit = (
        1.2 * icp
        + np.array([SENIORITY_EFFECT[s] for s in SENIORITY_LEVELS])[seniority]
        + 0.7 * intent
        + 0.6 * demo_recent
        + 0.6 * budget_ok - 0.3 * budget_short
        + np.array([e for _, e, _ in TIMELINES])[timeline]
        + np.array([e for _, e, _ in NEEDS])[need]
        + np.array([e for _, e, _ in LEAD_SOURCES])[source]
        + 0.15 * acc["subsidiary"][acc_idx]
        + 0.6 * icp * intent
        + 0.5 * (decision_maker & budget_ok)
    )
    p_true = _sigmoid(INTERCEPT + scale * (logit - 1.5))
    won = rng.random(n) < p_true

    # Activity after the decision date (onboarding mail, docs): it must never enter features.
    post_counts = np.where(decided >= horizon, 0, rng.poisson(np.where(won, 3.0, 0.4)))
    post_lead = np.repeat(np.arange(n), post_counts)
    post_type = _pick(rng, post_lead.shape[0], POST_CLOSE_MIX)
    post_after = rng.uniform(0.0, 60.0, post_lead.shape[0])

    ts = np.concatenate([
        ev_ts, (as_of[post_lead].astype("datetime64[s]")
                + np.round(post_after * 86_400).astype("timedelta64[s]")).astype(np.int64)])
    del ev_ts
    all_lead = np.concatenate([ev_lead, post_lead.astype(np.int32)])
    del ev_lead
    all_type = np.concatenate([ev_type, post_type.astype(np.int8)])
    del ev_type
    keep = ts < horizon.astype("datetime64[s]").astype(np.int64)
    if not keep.all():
        ts, all_lead, all_type = ts[keep], all_lead[keep], all_type[keep]
    del keep
    order = np.argsort(ts, kind="stable")
    ts, all_lead, all_type = ts[order], all_lead[order], all_type[order]
    del order

    lead_ids = _ids("L", n, 7)
    deal_ids = _ids("D", n, 7)
    leads, deals = _lead_and_deal_frames(
        rng, lead_ids=lead_ids, deal_ids=deal_ids, account_ids=accounts["account_id"].to_numpy()[acc_idx],
        titles=titles, source=source, timeline=timeline, need=need, created=created,
        deal_created=deal_created, decided=decided, is_open=is_open, won=won, amount=amount, budget=budget,
    )
    events = SyntheticEvents.draw(rng, lead_ids=lead_ids, lead_idx=all_lead, type_idx=all_type, ts=ts,
                                  dirty_fraction=params.dirty_fraction,
                                  before=int(export.astype("datetime64[s]").astype(np.int64)))
    flat_rng = np.random.default_rng([seed, 1])  # its own stream: the flat report leaves the rest unchanged
    flat = _flat_report(
        flat_rng, leads=leads, accounts=accounts, acc_idx=acc_idx, deals=deals, won=won, is_open=is_open,
        decided=decided, report=report, dirty_fraction=params.dirty_fraction,
    )
    accounts = _dirty_accounts(rng, accounts, params.dirty_fraction)
    leads = _dirty_leads(rng, leads, params.dirty_fraction)
    deals = _dirty_deals(rng, deals, params.dirty_fraction)
    # Dirt is drawn for the whole world, so one row is dirty in every export that holds it.
    leads = leads[leads["lead_id"].isin(lead_ids[seen_lead])].reset_index(drop=True)
    deals = deals[deals["deal_id"].isin(deal_ids[seen_deal])].reset_index(drop=True)
    flat = flat[flat["Record ID"].isin(FLAT_ID_BASE + np.flatnonzero(seen_lead))].reset_index(drop=True)

    truth = pd.DataFrame({
        "lead_id": lead_ids, "deal_id": deal_ids, "p_true": p_true, "won": won,
        "is_open": is_open, "as_of": export_as_of.astype("datetime64[s]"),
        "flat_record_id": FLAT_ID_BASE + np.arange(n),
    })[seen_deal].reset_index(drop=True)
    log.info("generated %d accounts, %d leads (%d open), %d events; true won rate of closed deals %.3f",
             len(accounts), int(seen_deal.sum()), int((is_open & seen_deal).sum()), events.num_rows,
             float(won[~is_open & seen_deal].mean()))
    return SyntheticExport(accounts=accounts, leads=leads, deals=deals, events=events, truth=truth, flat=flat)


def _us_date(days: np.ndarray) -> np.ndarray:
    """datetime64[D] -> "MM/DD/YYYY" text, as US CRM reports write dates."""
    iso = pd.Series(np.datetime_as_string(days, unit="D"))
    return (iso.str[5:7] + "/" + iso.str[8:10] + "/" + iso.str[0:4]).to_numpy(dtype=object)


def _flat_report(
    rng: np.random.Generator, *, leads: pd.DataFrame, accounts: pd.DataFrame, acc_idx: np.ndarray,
    deals: pd.DataFrame, won: np.ndarray, is_open: np.ndarray, decided: np.ndarray, report: _ReportCounts,
    dirty_fraction: float,
) -> pd.DataFrame:
    """One row per lead, as a marketing-automation contacts report exports it.

    Activity counts are taken as of each lead's decision date (or the export date for open leads),
    as a report saved at decision time would hold them. ``Customer Since`` and ``Closed Deal
    Amount`` are filled only for won leads, and ``Decision Date`` only for closed ones: outcome-derived.
    """
    n = len(leads)
    count, last = report.counts.__getitem__, report.last
    account = accounts.iloc[acc_idx].reset_index(drop=True)
    phone = np.char.add("+1-555-", np.char.zfill(rng.integers(0, 10_000_000, n).astype(str), 7))
    amount = deals["amount"].to_numpy()
    # One column at a time, text kept as Arrow strings: at 5M leads a frame of 30 columns built from
    # Python objects all at once would hold several GB of temporaries.
    columns: dict[str, Callable[[], Any]] = {
        "Record ID": lambda: FLAT_ID_BASE + np.arange(n),
        "First Name": lambda: leads["first_name"].array,
        "Last Name": lambda: leads["last_name"].array,
        "Email": lambda: leads["email"].array,
        "Phone Number": lambda: phone.astype(object),
        "Company Name": lambda: account["company_name"].array,
        "Contact Owner": lambda: account["account_owner"].array,
        "Job Title": lambda: leads["job_title"].array,
        "Industry": lambda: account["industry"].array,
        "Number of Employees": lambda: account["employees"].array,
        "Annual Revenue": lambda: account["annual_revenue"].array,
        "Country/Region": lambda: account["country"].array,
        "Original Source": lambda: leads["lead_source"].array,
        "Create Date": lambda: _us_date(leads["created_date"].to_numpy().astype("datetime64[D]")),
        "Budget": lambda: leads["stated_budget"].array,
        "Purchase Timeline": lambda: leads["purchase_timeline"].array,
        "Need": lambda: leads["stated_need"].array,
        "Estimated Deal Size": lambda: amount,
        "Pricing Page Views (7d)": lambda: count((0, 7)),
        "Pricing Page Views (30d)": lambda: count((0, 30)),
        "Demo Requests (30d)": lambda: count((1, 30)),
        "Webinars Attended (90d)": lambda: count((2, 90)),
        "Content Downloads (90d)": lambda: count((3, 90)),
        "Email Clicks (30d)": lambda: count((4, 30)),
        "Email Opens (30d)": lambda: count((5, 30)),
        "Days Since Last Activity": lambda: np.where(
            np.isinf(last), "", np.floor(np.where(np.isinf(last), 0, last)).astype(np.int64).astype(str)),
        "Decision Date": lambda: np.where(is_open, "", _us_date(decided)).astype(object),
        "Customer Since": lambda: np.where(won & ~is_open, _us_date(decided + 3 * DAY), "").astype(object),
        "Closed Deal Amount": lambda: np.where(won & ~is_open, amount.astype(str), "").astype(object),
        "Converted": lambda: np.where(is_open, "", np.where(won, "1", "0")).astype(object),
    }
    flat = pd.DataFrame(index=pd.RangeIndex(n))
    for name, make in columns.items():
        flat[name] = make()
    # A few dirty rows: bad dates and re-exported duplicates.
    idx = _dirty_index(rng, n, dirty_fraction / 2)
    flat.loc[idx, "Create Date"] = "13/45/2024"
    return _duplicate_some(rng, flat, dirty_fraction / 2)


def _lead_and_deal_frames(
    rng: np.random.Generator, *, lead_ids: np.ndarray, deal_ids: np.ndarray, account_ids: np.ndarray,
    titles: np.ndarray, source: np.ndarray, timeline: np.ndarray, need: np.ndarray, created: np.ndarray,
    deal_created: np.ndarray, decided: np.ndarray, is_open: np.ndarray, won: np.ndarray,
    amount: np.ndarray, budget: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = lead_ids.shape[0]
    first = np.array(_FIRST, dtype=object)[rng.integers(0, len(_FIRST), n)]
    last = np.array(_LAST, dtype=object)[rng.integers(0, len(_LAST), n)]
    email = np.char.add(np.char.add(np.char.lower(first.astype(str)), "."),
                        np.char.add(np.char.lower(lead_ids.astype(str)), "@example.com"))
    leads = pd.DataFrame({
        "lead_id": lead_ids.astype(object),
        "account_id": account_ids.astype(object),
        "first_name": first,
        "last_name": last,
        "email": email.astype(object),
        "job_title": titles,
        "lead_source": np.array([s for s, _, _ in LEAD_SOURCES], dtype=object)[source],
        "created_date": np.datetime_as_string(created, unit="D").astype(object),
        "stated_budget": pd.array(budget, dtype="Float64").astype(str).astype(object),
        "purchase_timeline": np.array([t for t, _, _ in TIMELINES], dtype=object)[timeline],
        "stated_need": np.array([s for s, _, _ in NEEDS], dtype=object)[need],
    })
    leads.loc[np.isnan(budget), "stated_budget"] = ""
    leads["stated_budget"] = leads["stated_budget"].str.replace(r"\.0$", "", regex=True)

    won_spelling = np.array(WON_SPELLINGS, dtype=object)[rng.integers(0, len(WON_SPELLINGS), n)]
    lost_spelling = np.array(LOST_SPELLINGS, dtype=object)[rng.integers(0, len(LOST_SPELLINGS), n)]
    open_stage = np.array(OPEN_STAGES, dtype=object)[rng.integers(0, len(OPEN_STAGES), n)]
    stage = np.where(is_open, open_stage, np.where(won, won_spelling, lost_spelling))
    # Filled in by customer success after the deal closes: an outcome leak.
    csm = np.where(is_open, "", np.where(won ^ (rng.random(n) < 0.03), "yes", "no"))
    deals = pd.DataFrame({
        "deal_id": deal_ids.astype(object),
        "lead_id": lead_ids.astype(object),
        "created_date": np.datetime_as_string(deal_created, unit="D").astype(object),
        "closed_date": np.where(is_open, "", np.datetime_as_string(decided, unit="D")).astype(object),
        "stage": stage,
        "amount": amount.astype(np.int64),
        "csm_assigned": csm.astype(object),
    })
    return leads, deals


def _duplicate_some(rng: np.random.Generator, frame: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """Re-export a share of rows a second time, as CRM exports do; the copy lands next to the original."""
    idx = _dirty_index(rng, len(frame), fraction)
    if not len(idx):
        return frame
    # Each row, then its copies: one take (a concat then a sort by label made three copies of the frame).
    labels = np.concatenate([np.arange(len(frame)), np.asarray(idx, dtype=np.int64)])
    return frame.take(labels[np.argsort(labels, kind="stable")]).reset_index(drop=True)


def _dirty_accounts(rng: np.random.Generator, frame: pd.DataFrame, fraction: float) -> pd.DataFrame:
    frame = frame.copy(deep=False)  # copy-on-write: only the columns dirtied here are copied
    idx = _dirty_index(rng, len(frame), fraction)
    thirds = np.array_split(idx, 3)
    frame.loc[frame.index[thirds[0]], "employees"] = "-" + frame["employees"].iloc[thirds[0]].str.replace(",", "")
    frame.loc[frame.index[thirds[1]], "industry"] = ""
    frame.loc[frame.index[thirds[2]], "annual_revenue"] = "n/a"
    return _duplicate_some(rng, frame, fraction / 2)


def _dirty_leads(rng: np.random.Generator, frame: pd.DataFrame, fraction: float) -> pd.DataFrame:
    frame = frame.copy(deep=False)  # copy-on-write: only the columns dirtied here are copied
    idx = _dirty_index(rng, len(frame), fraction)
    parts = np.array_split(idx, 3)
    bad_dates = np.array(["31/02/2024", "not a date", "2024-13-45"], dtype=object)
    frame.loc[frame.index[parts[0]], "created_date"] = bad_dates[np.arange(len(parts[0])) % 3]
    frame.loc[frame.index[parts[1]], "account_id"] = "A9999999"  # no such account
    frame.loc[frame.index[parts[2]], "job_title"] = "  " + frame["job_title"].iloc[parts[2]].str.upper() + " "
    return _duplicate_some(rng, frame, fraction)


def _dirty_deals(rng: np.random.Generator, frame: pd.DataFrame, fraction: float) -> pd.DataFrame:
    frame = frame.copy(deep=False)  # copy-on-write: only the columns dirtied here are copied
    idx = _dirty_index(rng, len(frame), fraction)
    parts = np.array_split(idx, 3)
    frame.loc[frame.index[parts[0]], "stage"] = np.array(["??", "", "Pending Review"], dtype=object)[
        np.arange(len(parts[0])) % 3]
    closed = frame.index[parts[1]][frame["closed_date"].iloc[parts[1]] != ""]
    frame.loc[closed, "closed_date"] = "2019-01-01"  # before the deal was created
    frame.loc[frame.index[parts[2]], "amount"] = -1 * frame["amount"].iloc[parts[2]]
    return _duplicate_some(rng, frame, fraction / 2)


@dataclass(frozen=True)
class SyntheticEvents:
    """The activity table of an export, kept as arrays and turned into rows a chunk at a time (at 5M
    leads it is 100M rows: as one Arrow table of text it would take tens of GB). The rows are the
    events before the export date in time order; ``event_id`` numbers every event of the world."""

    lead_text: pa.Array     # each lead's id
    lead_idx: np.ndarray    # each event's lead, in time order
    type_idx: np.ndarray    # each event's type (EVENT_LABELS)
    ts: np.ndarray          # each event's time, seconds since 1970
    dirty: tuple[np.ndarray, np.ndarray, np.ndarray]  # sorted positions: unknown lead, bad timestamp, blank type
    before: int             # the export instant: later events are not in the export
    num_rows: int

    column_names = EXPORT_COLUMNS["events"]

    @classmethod
    def draw(cls, rng: np.random.Generator, *, lead_ids: np.ndarray, lead_idx: np.ndarray, type_idx: np.ndarray,
             ts: np.ndarray, dirty_fraction: float, before: int) -> SyntheticEvents:
        """The table of these events, with its dirty rows drawn now (unknown lead, unparseable
        timestamp, blank type): the rest of the export's draws come after them."""
        idx = np.sort(_dirty_index(rng, lead_idx.shape[0], dirty_fraction))
        parts = np.array_split(idx, 3)
        lead_text = pa.array(lead_ids.astype(str))  # millions of ids convert in chunks: one array to take from
        lead_text = lead_text.combine_chunks() if isinstance(lead_text, pa.ChunkedArray) else lead_text
        return cls(lead_text, lead_idx, type_idx, ts, (parts[0], parts[1], parts[2]), before,
                   int(np.count_nonzero(ts < before)))

    def batches(self, rows: int | None = None) -> Iterator[pa.RecordBatch]:
        """The table's rows, ``rows`` events of the world at a time (fewer once the later ones are dropped)."""
        labels = pa.array(EVENT_LABELS)
        for at in _chunks(self.lead_idx.shape[0], rows or EVENT_ROWS):
            n = at.stop - at.start
            lead_col = self.lead_text.take(pa.array(self.lead_idx[at]))
            ts_text = pc.strftime(pa.array(self.ts[at], type=pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
            type_col = labels.take(pa.array(self.type_idx[at]))
            masks = [_mask(n, positions[np.searchsorted(positions, at.start):np.searchsorted(positions, at.stop)]
                           - at.start) for positions in self.dirty]
            lead_col = pc.replace_with_mask(lead_col, masks[0], pa.scalar("L9999999"))
            ts_text = pc.replace_with_mask(ts_text, masks[1], pa.scalar("yesterday"))
            type_col = pc.replace_with_mask(type_col, masks[2], pa.scalar(""))
            batch = pa.record_batch({
                "event_id": pa.array(np.arange(at.start + 1, at.stop + 1, dtype=np.int64)),
                "lead_id": lead_col,
                "event_type": type_col,
                "timestamp": ts_text,
            })
            yield batch.filter(pa.array(self.ts[at] < self.before))

    def to_table(self) -> pa.Table:
        """The whole table in memory (for small exports and tests)."""
        return pa.Table.from_batches(list(self.batches()), schema=EVENTS_SCHEMA)


def _chunks(n: int, rows: int | None = None) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, ``rows`` (default ``EVENT_CHUNK``) at a time."""
    step = rows or EVENT_CHUNK
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


class _ReportCounts:
    """The flat report's activity columns, counted chunk by chunk: events per (type, window in
    days) of each lead, and the age of each lead's latest event (inf: none)."""

    WINDOWS = ((0, 7), (0, 30), (1, 30), (2, 90), (3, 90), (4, 30), (5, 30))

    def __init__(self, n: int) -> None:
        self.n = n
        self.counts = {key: np.zeros(n, dtype=np.int64) for key in self.WINDOWS}
        self.last = np.full(n, np.inf)

    def add(self, lead: np.ndarray, kind: np.ndarray, age_days: np.ndarray) -> None:
        for (type_code, window), tally in self.counts.items():
            hit = (kind == type_code) & (age_days <= window)
            tally += np.bincount(lead[hit], minlength=self.n)
        np.minimum.at(self.last, lead, age_days)


def _mask(n: int, idx: np.ndarray) -> pa.Array:
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return pa.array(mask)


def write_export(export: SyntheticExport, *, raw_dir: Path, truth_dir: Path) -> dict[str, Path]:
    """Write the four tables and the flat report to ``raw_dir`` as CSV (what CRMs export), and the
    ground truth to ``truth_dir``, each atomically. ``raw_dir`` is the generator's: a file in it
    that changed since it was written is never overwritten (:func:`refuse_edited`)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    refuse_edited(raw_dir)
    tables: dict[str, pa.Table] = {
        "accounts": pa.Table.from_pandas(export.accounts, preserve_index=False),
        "leads": pa.Table.from_pandas(export.leads, preserve_index=False),
        "deals": pa.Table.from_pandas(export.deals, preserve_index=False),
    }
    written = {}
    for name, table in tables.items():
        path = raw_dir / f"{name}.csv"
        log.info("writing %s (%d rows)", path, table.num_rows)
        with atomic_path(path) as tmp:
            pacsv.write_csv(table, tmp)
        written[name] = path
    path = raw_dir / "events.csv"
    log.info("writing %s (%d rows)", path, export.events.num_rows)
    with atomic_path(path) as tmp, pacsv.CSVWriter(tmp, EVENTS_SCHEMA) as writer:
        done = 0
        for i, batch in enumerate(export.events.batches(), 1):
            writer.write_batch(batch)
            done += batch.num_rows
            if i % 16 == 0:  # progress on a long write: about every 16M events
                log.info("events.csv: %d of %d rows written", done, export.events.num_rows)
    written["events"] = path
    truth_path = truth_dir / TRUTH_FILE
    with atomic_path(truth_path) as tmp:
        pq.write_table(pa.Table.from_pandas(export.truth, preserve_index=False), tmp)
    flat_path = raw_dir / FLAT_FILE
    with atomic_path(flat_path) as tmp:
        export.flat.to_csv(tmp, index=False)
    written["flat"] = flat_path
    write_json(raw_dir / MANIFEST_FILE, {path.name: sha256_file(path) for path in written.values()})
    written["truth"] = truth_path
    return written


def refuse_edited(raw_dir: Path) -> None:
    """Fail, naming the files, if the generator's folder holds a file it wrote that has changed since
    (new outcomes appended by hand, say): generating again would silently throw that away."""
    manifest = raw_dir / MANIFEST_FILE
    recorded: dict[str, str] = read_json(manifest) if manifest.exists() else {}
    names = [f"{name}.csv" for name in EXPORT_COLUMNS] + [FLAT_FILE]
    present = [name for name in names if (raw_dir / name).exists()]
    edited = [name for name in present if recorded.get(name) != sha256_file(raw_dir / name)]
    if edited:
        one = len(edited) == 1
        why = f"changed after `leadscore generate` wrote {'it' if one else 'them'}" if recorded else \
            f"{'was' if one else 'were'} not written by `leadscore generate` (there is no {MANIFEST_FILE})"
        raise DataError(
            f"{raw_dir}: {', '.join(edited)} {why}; generating the synthetic "
            "export again would overwrite them. That folder is the generator's. To retrain on outcomes you add, "
            "keep your export in a folder of your own and point source.dir at it (docs/retraining.md); to see the "
            "demo world later, change generate.export_date (with generate.world_end_date); "
            f"to discard the edits, delete {raw_dir}")
