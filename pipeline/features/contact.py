"""Seniority and department parsed from free-text job titles ("VP of Sales", "Sr. Data Eng.")."""

from __future__ import annotations

import re

import pandas as pd

# First match wins, so the order matters: "Vice President" before "President".
SENIORITY_RULES: tuple[tuple[str, str], ...] = (
    ("vp", r"\b(?:[saec]?vp|vice[\s-]*president)\b"),
    ("c_level", r"\b(?:chief|ceo|cto|cfo|coo|cmo|cio|cro|ciso|founder|co-founder|president|owner)\b"),
    ("director", r"\b(?:director|dir|head)\b"),
    ("manager", r"\b(?:manager|mgr|team lead|lead|supervisor)\b"),
)
DEPARTMENT_RULES: tuple[tuple[str, str], ...] = (
    ("executive", r"\b(?:ceo|chief executive|founder|co-founder|owner|president)\b"),
    ("finance", r"\b(?:cfo|finance|financial|accounting|procurement)\b"),
    ("it", r"\b(?:cio|it|information|systems?)\b"),
    ("engineering", r"\b(?:cto|engineer(?:ing)?|eng|developer|data|software|technology)\b"),
    ("marketing", r"\b(?:cmo|marketing|growth|brand)\b"),
    ("sales", r"\b(?:cro|sales|revenue|account executive|business development|rep)\b"),
    ("operations", r"\b(?:coo|operations|ops)\b"),
)

def _classify(titles: pd.Series, rules: tuple[tuple[str, str], ...], *, default: str) -> pd.Series:
    folded = titles.astype("string").str.casefold().str.replace(".", " ", regex=False)
    out = pd.Series(pd.NA, index=titles.index, dtype="object")
    for level, pattern in rules:
        hit = out.isna() & folded.str.contains(re.compile(pattern), na=False)
        out[hit] = level
    out[out.isna() & folded.notna() & (folded.str.strip() != "")] = default
    return out.fillna("unknown")


def seniority(titles: pd.Series) -> pd.Series:
    """c_level / vp / director / manager / ic, or unknown for a blank title."""
    return _classify(titles, SENIORITY_RULES, default="ic")


def department(titles: pd.Series) -> pd.Series:
    return _classify(titles, DEPARTMENT_RULES, default="other")
