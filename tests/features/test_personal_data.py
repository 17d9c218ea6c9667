"""Issue 18, class 5: PII can't leak by mapping.

Rules checked here:
1. values that look like emails, phone numbers, person names or street addresses are refused as a
   feature, whatever the kind and the field name, unless the column says ``personal: allowed``;
2. a field or column whose name says it is personal is refused the same way;
3. a framework rule's reason never quotes free text;
4. the synthetic mapping and every shipped example still pass.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import SourceParams, parse_settings
from pipeline.contracts.fields import CANONICAL_FIELDS, FieldInfo, reserved_use
from pipeline.contracts.personal import PERSONAL_SHARE, personal_header
from pipeline.data import inspect
from pipeline.errors import ConfigError, DataError
from pipeline.features.fields import allowed_personal, refuse_personal
from pipeline.features.qualification import Condition, Criterion, Framework, evaluate_framework
from pipeline.stages.features import featurise
from tests.conftest import REPO

N = 200
BENIGN = ["Software", "Retail", "high", "medium", "< 3 months", "Healthcare", "Partner referral"]


def _mixed(personal: list[Any], share: float, benign: list[Any], n: int = N) -> list[Any]:
    """``n`` values, ``share`` of them personal (cycled), the rest benign, interleaved."""
    k = math.ceil(share * n)
    values = [personal[i % len(personal)] for i in range(k)] + [benign[i % len(benign)] for i in range(n - k)]
    return list(np.random.default_rng(5).permutation(np.array(values, dtype=object)))


def _field(name: str, kind: str, column: str | None = None) -> FieldInfo:
    return FieldInfo(name=name, kind=kind, role="contact", label=name.replace("_", " "), table="primary",
                     column=column or name.replace("_", " ").title())


def _mapping(columns: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"source": {"kind": "flat", "primary": {
        "file": "leads.csv", "id": "Lead ID", "outcome": {"column": "Converted", "won": ["1"], "lost": ["0"]},
        "columns": columns}}}


EMAILS = [f"person{i}@example.com" for i in range(40)]
PHONES = [f"+1 (415) 555-{i:04d}" for i in range(40)]


# ---------------------------------------------------------------- rule 1: by values


@pytest.mark.parametrize(("name", "kind", "values", "what"), [
    pytest.param("contact_handle", "categorical", _mixed(EMAILS, 1.0, BENIGN), "email addresses",
                 id="class 5 rule 1: an email column mapped as categorical is refused"),
    pytest.param("x1", "categorical", _mixed(EMAILS, 0.06, BENIGN), "email addresses",
                 id="class 5 rule 1: 6% emails among categories under a neutral name (x1) is refused"),
    pytest.param("notes", "text", _mixed([f"call {p} after 5" for p in PHONES], 0.1, ["keen on budget"]),
                 "phone numbers", id="class 5 rule 1: phone numbers inside free-text notes are refused"),
    pytest.param("x2", "numeric", _mixed([4155550100.0 + i * 37 for i in range(40)], 0.5, [12.0, 350.5]),
                 "phone numbers", id="class 5 rule 1: phone numbers stored as numbers are refused"),
    pytest.param("contact_no", "categorical", _mixed(["4155550134", "020 7946 0958", "415.555.0199"], 0.3,
                                                     BENIGN), "phone numbers",
                 id="class 5 rule 1: digit-only and dotted phone numbers as categories are refused"),
    pytest.param("notes", "text", _mixed(["ships to 12 Elm Street", "HQ at 400 Market St."], 0.08,
                                         ["keen on budget"]), "street addresses",
                 id="class 5 rule 1: street addresses in notes are refused"),
    pytest.param("rep", "categorical", _mixed(["Ana Smith", "Kofi Mensah", "Priya Patel"], 0.2, BENIGN),
                 "person names", id="class 5 rule 1: person names as categories are refused"),
])
def test_values_that_look_personal_are_refused_as_features(name: str, kind: str, values: list[Any],
                                                           what: str) -> None:
    records = pd.DataFrame({name: pd.Series(values, dtype="float64" if kind == "numeric" else "object")})
    with pytest.raises(DataError) as err:
        refuse_personal(records, [_field(name, kind, column="Col 7")])
    message = str(err.value)
    assert f"source.primary.columns.{name}" in message and "'Col 7'" in message and what in message
    assert "% of its non-empty values" in message
    for fix in ("never_use", "source.display.fields", "personal: allowed"):
        assert fix in message
    refuse_personal(records, [_field(name, kind, column="Col 7")], allowed={name})  # the opt-in


@pytest.mark.parametrize(("name", "kind", "values"), [
    pytest.param("industry", "categorical", _mixed(["Software", "Retail"], 1.0, BENIGN),
                 id="class 5 rule 1 (no false alarm): ordinary categories pass"),
    pytest.param("annual_revenue", "numeric", [2936670000.0, 1228819000.0, 12_000_000.0, 55.5] * 50,
                 id="class 5 rule 1 (no false alarm): revenue in the billions is not a phone number"),
    pytest.param("x3", "categorical", ["2024-01-15", "01/02/2024", "100234567", "12 seats"] * 50,
                 id="class 5 rule 1 (no false alarm): dates, codes and counts as text pass"),
    pytest.param("x1", "categorical", _mixed(EMAILS, 0.02, BENIGN),
                 id="class 5 rule 1: a share below the threshold passes"),
])
def test_ordinary_values_are_not_taken_for_personal_data(name: str, kind: str, values: list[Any]) -> None:
    records = pd.DataFrame({name: pd.Series(values, dtype="float64" if kind == "numeric" else "object")})
    refuse_personal(records, [_field(name, kind, column="Col 7")])


def test_case_folded_categories_are_judged_by_their_crm_spelling() -> None:
    """class 5 rule 1: ingest case-folds categories ("ana smith"); the guard reads the CRM's spelling."""
    spelled = {"ana smith": "Ana Smith", "kofi mensah": "Kofi Mensah", "retail": "Retail"}
    records = pd.DataFrame({"owner_x": ["ana smith", "kofi mensah"] * 5 + ["retail"] * 90})
    info = FieldInfo(name="owner_x", kind="categorical", role="deal", label="Owner", table="teams",
                     column="agent", spellings=spelled)
    with pytest.raises(DataError, match=r"source\.lookups\.teams\.columns\.owner_x: .*person names: 10%"):
        refuse_personal(records, [info])


def test_featurise_refuses_a_personal_field_before_building_anything(small) -> None:
    """class 5 rule 1: the features stage runs the guard on the ingested records (any field name)."""
    records = small.ingested.records.copy()
    records["x9"] = [EMAILS[i % len(EMAILS)] if i % 10 == 0 else "alpha" for i in range(len(records))]
    fields = [*small.ingested.fields, _field("x9", "categorical", column="Misc")]
    with pytest.raises(DataError, match=r"columns\.x9: column 'Misc' looks like email addresses: 10%"):
        featurise(records, small.ingested.events, fields, settings=small.settings,
                  event_accounts=small.ingested.event_accounts, clock=small.ingested.clock)


def test_inspect_uses_the_shared_detectors() -> None:
    """class 5 rule 1: one copy of the detectors, in pipeline/contracts/personal.py."""
    for name in ("_EMAIL", "_PHONE", "_STREET", "_PII_HEADER"):
        assert not hasattr(inspect, name), name
    assert inspect.personal_header is personal_header


def test_the_inspect_draft_never_maps_what_the_guard_refuses(tmp_path: Path) -> None:
    """class 5 rule 1: `leadscore inspect` drafts a column with a few emails as never_use: pii, and the
    sellers' own names with an explicit `personal: allowed` (and a note), so its draft runs unedited."""
    n = 200
    frame = pd.DataFrame({
        "Deal ID": [f"D{i}" for i in range(n)],
        "Notes": _mixed(EMAILS, 0.1, ["keen", "call back", "no budget", "demo done"], n),
        "Sales Agent": _mixed(["Ana Smith", "Kofi Mensah"], 0.2, ["Zed Q", "Xu Bo", "Lo Ri"], n),
        "Converted": [i % 2 for i in range(n)],
    })
    path = tmp_path / "deals.csv"
    frame.to_csv(path, index=False)
    result = inspect.inspect_file(path)
    assert result.never_use["Notes"].reason == "pii"
    agent = next(f for f in result.fields.values() if f.column == "Sales Agent")
    assert agent.personal and any("Sales Agent" in note and "personal: allowed" in note for note in result.notes)
    draft = inspect.draft_source(result)
    parse_settings({"source": draft})
    entries = {c["column"]: c for c in draft["primary"]["columns"].values()}
    assert entries["Sales Agent"]["personal"] == "allowed" and "Notes" not in entries


# ---------------------------------------------------------------- rule 2: by name


@pytest.mark.parametrize(("field", "column"), [
    pytest.param("contact_email", "Work Email", id="class 5 rule 2: an email field is refused by its name"),
    pytest.param("x2", "Phone Number", id="class 5 rule 2: a phone column under a neutral field name is refused"),
    pytest.param("birth", "Date of Birth", id="class 5 rule 2: a date-of-birth column is refused"),
    pytest.param("last_name", "Surname", id="class 5 rule 2: a last-name field is refused"),
    pytest.param("street", "Street", id="class 5 rule 2: an address column is refused"),
])
def test_a_field_named_personal_is_refused_when_params_are_read(field: str, column: str) -> None:
    columns = {field: {"column": column, "kind": "categorical", "role": "contact"}}
    with pytest.raises(ConfigError) as err:
        parse_settings(_mapping(columns))
    message = str(err.value)
    assert f"source.primary.columns.{field}" in message and repr(column) in message
    assert "personal data by its name" in message and "personal: allowed" in message and "never_use" in message
    opted = parse_settings(_mapping({field: {**columns[field], "personal": "allowed"}}))
    assert allowed_personal(opted.source) == {field}


def test_a_count_of_emails_is_not_personal() -> None:
    """class 5 rule 2 (no false alarm): "Email Opens (30d)" counts opens; it is not an address."""
    parse_settings(_mapping({"email_opens_30d": {"column": "Email Opens (30d)", "kind": "numeric",
                                                 "role": "intent"}}))


# ---------------------------------------------------------------- rule 3: reasons


def _notes_framework(op: str, value: Any) -> Framework:
    return Framework(name="T", criteria=[Criterion(key="budget", label="Budget", conditions=[
        Condition(field="notes", op=op, value=value)])])


@pytest.mark.parametrize(("op", "value", "expected"), [
    pytest.param("contains", "budget", ["Notes mentions budget", "Notes does not mention budget"],
                 id="class 5 rule 3: a contains rule on notes says only whether they mention the word"),
    pytest.param("in", ["approved"], ["Notes is another value (needs one of approved)"] * 2,
                 id="class 5 rule 3: a value the rule does not declare is never quoted"),
    pytest.param(">=", 1000, ["Notes is not a number (needs at least 1000)"] * 2,
                 id="class 5 rule 3: free text under a numeric rule is never quoted"),
])
def test_rule_reasons_never_quote_free_text(op: str, value: Any, expected: list[str]) -> None:
    context = pd.DataFrame({"notes": ["budget ok, call +1 (415) 555-0134, 12 Elm Street",
                                      "ana.smith@example.com at 12 Elm Street"]})
    out = evaluate_framework(context, _notes_framework(op, value))
    reasons = out["fw_budget_reason"].tolist()
    assert reasons == expected
    for reason in reasons:
        assert "555" not in reason and "@" not in reason and "Elm" not in reason


def test_declared_levels_are_still_quoted() -> None:
    """class 5 rule 3: a level the rule names, or the field's known levels, may be quoted."""
    context = pd.DataFrame({"stated_need": ["low", "high"]})
    fw = Framework(name="T", criteria=[Criterion(key="need", label="Need", conditions=[
        Condition(field="stated_need", op="in", value=["high"])])])
    out = evaluate_framework(context, fw, display={"stated_need": {"low": "Low", "high": "High"}})
    assert out["fw_need_reason"].tolist() == ["Stated need is Low (needs one of High)",
                                              "Stated need is High (needs one of High)"]


# ---------------------------------------------------------------- rule 4: shipped mappings


@pytest.mark.parametrize("params", [*sorted((REPO / "examples").glob("*/params.yaml")), REPO / "params.yaml"],
                         ids=lambda p: f"class 5 rule 4: {p.parent.name}/{p.name} maps no personal feature")
def test_shipped_mappings_map_no_personal_field_as_a_feature(params: Path) -> None:
    source = parse_settings(yaml.safe_load(params.read_text())).source  # the header rule passes
    # The only opt-ins: Maven's sales agents and managers, the seller's own team (not the leads).
    assert allowed_personal(source) <= {"sales_agent", "manager"}
    if source.primary is not None:
        mapped = {c.column for t in [source.primary, *source.lookups.values()] for c in t.columns.values()}
        assert not {c for c in mapped if personal_header(c)}


def test_the_synthetic_export_passes_the_guard(small) -> None:
    """class 5 rule 4: the default export's fields are all accepted (its Email is display-only)."""
    refuse_personal(small.ingested.records, small.ingested.fields)
    assert "email" not in {f.name for f in small.ingested.fields}


# ---------------------------------------------------------------- property


FIELD_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda n: n not in CANONICAL_FIELDS and reserved_use(n) is None)


@st.composite
def personal_columns(draw: st.DrawFn) -> tuple[str, list[Any], int]:
    """A kind, a column of values at least PERSONAL_SHARE of which are emails or phone numbers, and its size."""
    kind = draw(st.sampled_from(["categorical", "text", "numeric"]))
    n = draw(st.integers(20, 120))
    k = draw(st.integers(math.ceil(PERSONAL_SHARE * n), n))
    if kind == "numeric":
        personal = [float(draw(st.integers(10**9, 10**12 - 1)) // 10 * 10 + draw(st.integers(1, 9)))
                    for _ in range(3)]
        benign: list[Any] = [float(x) for x in draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=4))]
    else:
        emails = [f"{u}@{d}.com" for u, d in draw(st.lists(st.tuples(
            st.from_regex(r"[a-z][a-z0-9.]{0,8}", fullmatch=True), st.from_regex(r"[a-z]{2,8}", fullmatch=True)),
            min_size=1, max_size=3))]
        phones = [f"+{draw(st.integers(1, 99))} {draw(st.integers(100, 999))} {draw(st.integers(100, 999))} "
                  f"{draw(st.integers(1000, 9999))}"]
        personal = draw(st.sampled_from([emails, phones, emails + phones]))
        benign = draw(st.lists(st.sampled_from(BENIGN), min_size=1, max_size=4))
    values = [personal[i % len(personal)] for i in range(k)] + [benign[i % len(benign)] for i in range(n - k)]
    order = draw(st.permutations(range(n)))
    return kind, [values[i] for i in order], n


@settings(max_examples=40, deadline=None)
@given(name=FIELD_NAMES, column=personal_columns())
def test_property_any_mapping_of_emails_or_phones_into_features_is_refused_unless_opted_in(
        name: str, column: tuple[str, list[Any], int]) -> None:
    """class 5 rules 1 and 2: under any field name and kind, with any share at or above the threshold
    mixed with other values, the mapping is refused; the same mapping with ``personal: allowed`` is accepted."""
    kind, values, _ = column
    records = pd.DataFrame({name: pd.Series(values, dtype="float64" if kind == "numeric" else "object")})
    spec = {"column": "Col A", "kind": kind, "role": "contact"}
    refused = False
    try:
        source = parse_settings(_mapping({name: spec})).source
        refuse_personal(records, [_field(name, kind, column="Col A")], allowed=allowed_personal(source))
    except (ConfigError, DataError) as err:
        refused = name in str(err)
    assert refused
    opted = SourceParams.model_validate(parse_settings(_mapping({name: {**spec, "personal": "allowed"}})).source)
    refuse_personal(records, [_field(name, kind, column="Col A")], allowed=allowed_personal(opted))
