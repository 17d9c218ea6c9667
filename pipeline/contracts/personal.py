"""What personal data looks like: e-mail addresses, phone numbers, person names and street addresses,
by a column's header or by its values. ``inspect`` uses it to draft ``never_use: pii``; the mapping
(header rule) and the features stage (value rule) use it to refuse such a field as a feature."""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

import pandas as pd

# A field is refused as a feature when at least this share of its non-empty values look personal:
# a few addresses in a notes column are enough to leak them into the model and the board.
PERSONAL_SHARE = 0.05
SAMPLE = 20_000  # values looked at per field: enough to recognise the pattern, cheap on big exports

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
PHONE = re.compile(r"^\+?[\d\s().-]{7,22}$")
STREET = re.compile(r"^\d+[a-z]?\s+(?:\w+\s+)+(?:st|street|ave|avenue|rd|road|blvd|boulevard|ln|lane|dr|drive|way|"
                    r"ct|court|pl|place|sq|square|hwy|highway)\b", re.IGNORECASE)
# The same inside free text ("call +1 (415) 555-0134 after 5", "ships to 12 Elm Street").
_EMAIL_IN = re.compile(r"[^@\s<>(),;:]+@[^@\s<>(),;:]+\.[a-z]{2,}\b", re.IGNORECASE)
_PHONE_IN = re.compile(r"(?<![\w.-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)\s?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}"
                       r"(?![\w.-])")
_DATE = re.compile(r"^\d{4}[/.-]\d{1,2}[/.-]\d{1,2}\b|^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b")  # not a phone number
_STREET_IN = re.compile(r"\b\d{1,5}[a-zA-Z]?\s+(?:[A-Z][\w'-]*\.?\s+){1,3}(?i:st|street|ave|avenue|rd|road|blvd"
                        r"|boulevard|ln|lane|dr|drive|way|ct|court|pl|place|sq|square|hwy|highway)\b")
# A person's name: a common given name followed by a capitalised word ("Ana Smith", "met Kofi Mensah").
_GIVEN = """
aaron adam adrian ahmed aisha alex alexander alice amanda amir ana andrea andrew angela anna anne arjun
ben benjamin brian carlos carmen catherine charles chloe chris christina daniel david diana diego dmitri
elena elizabeth emily emma eric erik fatima farid fernando francesca gabriel george hana hannah hiro
ines isabel ivan jack jacob jamal james jane jason javier jennifer jessica john jose joseph juan julia
karen kate kevin kofi laura lena linda lisa lucas luis maria marco mark martin mary matthew mei michael
michelle mohammed nadia natalia nicole noah olga oliver omar patrick paul peter priya quinn rachel rahul
raj robert rosa ryan sam samuel sara sarah sofia sophie stephen steven susan sven tara thomas tim
tom uma victor wei william ximena yuki yusuf zoe
"""
GIVEN_NAMES = frozenset(_GIVEN.split())
_NAME_IN = re.compile(r"\b([A-Z][a-z]+)\s+(?:[A-Z]\.\s+)?(?:O'|Mc|Mac)?[A-Z][a-zà-ÿ'’-]+\b")
_COMPANY = re.compile(r"\b(?:inc|llc|ltd|gmbh|group|systems|labs|holdings|corp|corporation|company|co|sa|ag|plc"
                      r"|bv|partners|foods|bank|capital|technologies|solutions|international)\b\.?", re.IGNORECASE)
HEADER = re.compile(
    r"^(?:(?:first|last|full|middle|given|family|contact|lead|person)\s?name|name|firstname|lastname|surname"
    r"|e ?mail(?: address)?|(?:work|personal|business|contact) email|date of birth|birth ?date|dob|ssn"
    r"|social security(?: number)?|linkedin(?: url| profile)?)$"
    r"|\b(?:phone|mobile|telephone|tel|fax|cell)(?: number| no)?$|\baddress\b|\bstreet\b")
_COUNT_HEADER = re.compile(r"\b(?:calls?|clicks?|opens?|bounces?|sends?|sent)\b")  # "email opens": a count

EMAILS, PHONES, NAMES, STREETS = "email addresses", "phone numbers", "person names", "street addresses"


def normalise_header(name: str) -> str:
    """"Country/Region" -> "country region"; "Pricing Page Views (7d)" -> "pricing page views 7d"."""
    split = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)  # camelCase -> camel Case
    text = unicodedata.normalize("NFKD", split.casefold()).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def personal_header(name: str) -> bool:
    """Whether a header or field name says its values are personal ("E-mail", "contact_phone", "DOB")."""
    header = normalise_header(name)
    return bool(HEADER.search(header)) and not _COUNT_HEADER.search(header)


def _phone(value: str) -> bool:
    """A whole value that is a phone number: formatted (+, spaces, dashes, brackets) or 10-15 digits."""
    digits = sum(c.isdigit() for c in value)
    return (bool(PHONE.match(value)) and 7 <= digits <= 15 and (digits >= 10 or not value.isdigit())
            and not _DATE.match(value))


def _name(value: str) -> bool:
    if _COMPANY.search(value):  # "Charles Schwab Corp", "Martin Holdings": a company, not a person
        return False
    return any(m.group(1).casefold() in GIVEN_NAMES for m in _NAME_IN.finditer(value))


def looks_like(value: str) -> str | None:
    """What personal data ``value`` holds or contains (one of EMAILS, PHONES, NAMES, STREETS), else None."""
    if _EMAIL_IN.search(value):
        return EMAILS
    if _phone(value) or _PHONE_IN.search(value):
        return PHONES
    if _STREET_IN.search(value) or STREET.match(value):
        return STREETS
    if _name(value):
        return NAMES
    return None


def personal_shares(values: Iterable[object]) -> dict[str, float]:
    """Share of the non-empty values (the first SAMPLE of them) that look like each kind of personal
    data, kinds never seen left out. A number is a phone number when it has 10-15 digits and is not
    a round amount (4155550134.0, not 2936670000.0: revenue in the billions)."""
    counts, total = _personal_counts(values)
    return {what: n / total for what, n in counts.items()}


def _personal_counts(values: Iterable[object]) -> tuple[Counter[str], int]:
    """How many of the non-empty values (the first SAMPLE) look like each kind, and how many there are."""
    present = (v for v in values if _present(v))
    seen = Counter(v if isinstance(v, int | float) and not isinstance(v, bool) else str(v).strip()
                   for v in itertools.islice(present, SAMPLE))
    counts: Counter[str] = Counter()
    for value, n in seen.items():
        what = _number(value) if isinstance(value, int | float) else looks_like(value)
        if what is not None:
            counts[what] += n
    return counts, sum(seen.values())


def _present(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    if isinstance(value, float):
        return not math.isnan(value)
    return not isinstance(value, str) or bool(value.strip())


def _number(value: float) -> str | None:
    if not float(value).is_integer():
        return None
    digits = str(abs(int(value)))
    return PHONES if 10 <= len(digits) <= 15 and not digits.endswith("000") else None


def looks_personal(values: Iterable[object], *, share: float = PERSONAL_SHARE) -> tuple[str, float] | None:
    """What the non-empty values look like ("email addresses", or "phone numbers and email addresses",
    most common first) and the share that look personal, when at least ``share`` of them do; else None.
    Kinds add up: a notes column of 3 % phones and 3 % emails is refused."""
    counts, total = _personal_counts(values)
    found = sum(counts.values())
    if not found or found / total < share:  # (a ratio of integers: exact at the threshold itself)
        return None
    return " and ".join(what for what, _ in counts.most_common()), found / total
