"""Job titles -> seniority and department: the titles.yaml table, its override file and its validation."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.data.generate import TITLES as GENERATOR_TITLES
from pipeline.errors import ConfigError
from pipeline.features import contact
from pipeline.features.contact import (
    default_title_rules,
    department,
    load_title_rules,
    normalise_title,
    normalise_titles,
    seniority,
)

# (title as typed, seniority, department)
TITLES: list[tuple[str, str, str]] = [
    # Every title the synthetic generator writes (see pipeline/generate.py TITLES).
    ("CEO", "c_level", "executive"), ("Chief Executive Officer", "c_level", "executive"),
    ("CTO", "c_level", "engineering"), ("Chief Technology Officer", "c_level", "engineering"),
    ("CFO", "c_level", "finance"), ("Chief Financial Officer", "c_level", "finance"),
    ("COO", "c_level", "operations"), ("CMO", "c_level", "marketing"), ("Chief Revenue Officer", "c_level", "sales"),
    ("Founder & CEO", "c_level", "executive"), ("Co-Founder", "c_level", "executive"),
    ("Chief Information Officer", "c_level", "it"),
    ("VP of Sales", "vp", "sales"), ("VP Sales", "vp", "sales"), ("Vice President, Marketing", "vp", "marketing"),
    ("VP Engineering", "vp", "engineering"), ("SVP Operations", "vp", "operations"),
    ("Vice President of Finance", "vp", "finance"), ("EVP, IT", "vp", "it"), ("VP, Data & Analytics", "vp", "data"),
    ("Senior Vice President Sales", "vp", "sales"),
    ("Director of Sales", "director", "sales"), ("Sales Director", "director", "sales"),
    ("Dir. Marketing", "director", "marketing"), ("Director, Engineering", "director", "engineering"),
    ("Head of IT", "director", "it"), ("Head of Operations", "director", "operations"),
    ("Sr. Director Finance", "director", "finance"), ("Director of Data Science", "director", "data"),
    ("Head of Growth", "director", "marketing"),
    ("Sales Manager", "manager", "sales"), ("Marketing Manager", "manager", "marketing"),
    ("Engineering Manager", "manager", "engineering"), ("IT Manager", "manager", "it"),
    ("Mgr, Operations", "manager", "operations"), ("Finance Manager", "manager", "finance"),
    ("Team Lead, Sales", "manager", "sales"), ("Product Manager", "manager", "product"),
    ("Procurement Manager", "manager", "procurement"),
    ("Account Executive", "ic", "sales"), ("Sr. Data Eng.", "ic", "data"), ("Software Engineer", "ic", "engineering"),
    ("Marketing Specialist", "ic", "marketing"), ("Financial Analyst", "ic", "finance"),
    ("Operations Coordinator", "ic", "operations"), ("IT Administrator", "ic", "it"), ("Sales Rep", "ic", "sales"),
    ("Data Analyst", "ic", "data"), ("Intern", "ic", "other"), ("Business Analyst", "ic", "other"),
    ("Jr. Developer", "ic", "engineering"), ("Consultant", "ic", "other"),
    # C-level: acronyms, chief ... officer, founders, owners, partners, boards.
    ("President & CEO", "c_level", "executive"), ("President", "c_level", "executive"),
    ("Chief Marketing Officer", "c_level", "marketing"), ("Chief Operating Officer", "c_level", "operations"),
    ("Chief People Officer", "c_level", "hr"), ("Chief Human Resources Officer", "c_level", "hr"),
    ("CHRO", "c_level", "hr"), ("Chief Information Security Officer", "c_level", "it"), ("CISO", "c_level", "it"),
    ("Chief Product Officer", "c_level", "product"), ("CPO", "c_level", "product"),
    ("Chief Data Officer", "c_level", "data"), ("CDO", "c_level", "data"),
    ("Chief Legal Officer", "c_level", "legal"), ("General Counsel", "c_level", "legal"),
    ("Chief Procurement Officer", "c_level", "procurement"), ("Chief Executive", "c_level", "executive"),
    ("Deputy CEO", "c_level", "executive"), ("Co-founder and CTO", "c_level", "executive"),
    ("Founder, VP Product", "c_level", "executive"), ("Owner", "c_level", "executive"),
    ("Co-Owner", "c_level", "executive"), ("Business Owner", "c_level", "executive"),
    ("Managing Partner", "c_level", "executive"), ("Partner", "c_level", "executive"),
    ("Senior Partner", "c_level", "executive"), ("Managing Director", "c_level", "executive"),
    ("Managing Director, Sales", "c_level", "sales"), ("Chairman of the Board", "c_level", "executive"),
    ("Board Member", "c_level", "executive"),
    # Tricky: not what a keyword alone would say.
    ("Chief of Staff", "director", "executive"), ("Chief of Staff to the CEO", "director", "executive"),
    ("SVP & Chief of Staff", "vp", "executive"), ("CEO Office Manager", "manager", "operations"),
    ("Chief Customer Officer", "c_level", "customer_success"),
    ("Assistant to the CEO", "ic", "operations"), ("Executive Assistant to the CFO", "ic", "operations"),
    ("Personal Assistant", "ic", "operations"), ("Office of the CFO", "ic", "finance"),
    ("Product Owner", "ic", "product"), ("Partner Manager", "manager", "sales"),
    ("HR Business Partner", "ic", "hr"), ("Talent Acquisition Partner", "ic", "hr"),
    ("Associate Partner", "director", "other"), ("Chief Architect", "ic", "engineering"),
    ("Vice President", "vp", "other"), ("vice-president finance", "vp", "finance"),
    ("Executive Vice President, Global Sales", "vp", "sales"),
    ("Assistant Vice President, Operations", "vp", "operations"), ("AVP Finance", "vp", "finance"),
    ("SVP, Customer Success", "vp", "customer_success"),
    ("Customer Success Manager", "ic", "customer_success"), ("Account Manager", "ic", "customer_success"),
    ("Key Account Manager", "ic", "customer_success"), ("Associate Product Manager", "ic", "product"),
    ("Jr. Account Manager", "ic", "customer_success"), ("Assistant Manager", "manager", "other"),
    ("Lead Generation Specialist", "ic", "marketing"), ("Leadership Coach", "ic", "other"),
    ("Transit Planner", "ic", "other"), ("Media Buyer", "ic", "marketing"),
    ("Marketing Intern", "ic", "marketing"), ("Summer Intern, Engineering", "ic", "engineering"),
    ("Working Student", "ic", "other"),
    # Directors, heads, GMs.
    ("General Manager", "director", "executive"), ("GM, EMEA", "director", "executive"),
    ("Head of Marketing", "director", "marketing"), ("Head of People", "director", "hr"),
    ("Head of Customer Success", "director", "customer_success"), ("Head of Data", "director", "data"),
    ("Head of Product", "director", "product"), ("Head of Legal", "director", "legal"),
    ("Head of Strategy", "director", "executive"), ("Executive Director", "director", "executive"),
    ("Associate Director, Marketing", "director", "marketing"),
    ("Senior Director of Engineering", "director", "engineering"),
    ("Director of Procurement", "director", "procurement"),
    ("Director, Information Technology", "director", "it"), ("Creative Director", "director", "marketing"),
    # Managers and leads.
    ("Sr. Manager, FP&A", "manager", "finance"), ("Senior Marketing Manager", "manager", "marketing"),
    ("Engineering Mgr", "manager", "engineering"), ("Team Leader, Customer Support", "manager", "customer_success"),
    ("Tech Lead", "manager", "engineering"), ("Supervisor, Warehouse", "manager", "operations"),
    ("Office Manager", "manager", "operations"), ("Tax Manager", "manager", "finance"),
    ("Plant Manager", "manager", "operations"), ("PR Manager", "manager", "marketing"),
    ("Product Marketing Manager", "manager", "marketing"), ("Project Manager", "manager", "other"),
    ("Program Manager", "manager", "other"), ("Sales Operations Manager", "manager", "sales"),
    ("Marketing Operations Manager", "manager", "marketing"), ("IT Operations Manager", "manager", "it"),
    ("People Operations Manager", "manager", "hr"), ("Partnerships Manager", "manager", "sales"),
    ("Investor Relations Manager", "manager", "finance"),
    # Individual contributors, seniors and principals included.
    ("  SALES REP ", "ic", "sales"), ("Senior Software Engineer", "ic", "engineering"),
    ("Principal Engineer", "ic", "engineering"), ("Staff Engineer", "ic", "engineering"),
    ("Senior Data Scientist", "ic", "data"), ("Machine Learning Engineer", "ic", "data"),
    ("Data Engineer", "ic", "data"), ("BI Developer", "ic", "data"), ("DevOps Engineer", "ic", "engineering"),
    ("Site Reliability Engineer", "ic", "engineering"), ("QA Engineer", "ic", "engineering"),
    ("Solutions Architect", "ic", "engineering"), ("Sales Engineer", "ic", "sales"),
    ("Business Development Representative", "ic", "sales"), ("SDR", "ic", "sales"),
    ("Inside Sales Representative", "ic", "sales"), ("Senior Account Executive", "ic", "sales"),
    ("Revenue Operations Analyst", "ic", "sales"), ("Customer Support Specialist", "ic", "customer_success"),
    ("Technical Support Engineer", "ic", "customer_success"), ("Help Desk Technician", "ic", "it"),
    ("Systems Administrator", "ic", "it"), ("Network Engineer", "ic", "it"), ("Security Analyst", "ic", "it"),
    ("Database Administrator", "ic", "it"), ("UX Designer", "ic", "product"), ("Product Designer", "ic", "product"),
    ("Content Marketing Specialist", "ic", "marketing"), ("SEO Specialist", "ic", "marketing"),
    ("Graphic Designer", "ic", "marketing"), ("Accountant", "ic", "finance"), ("Controller", "ic", "finance"),
    ("Internal Auditor", "ic", "finance"), ("Buyer", "ic", "procurement"), ("Purchasing Agent", "ic", "procurement"),
    ("Logistics Coordinator", "ic", "operations"), ("Supply Chain Analyst", "ic", "operations"),
    ("Recruiter", "ic", "hr"), ("Payroll Specialist", "ic", "hr"), ("Paralegal", "ic", "legal"),
    ("Corporate Counsel", "ic", "legal"), ("Compliance Officer", "ic", "legal"),
    ("Data Protection Officer", "ic", "legal"), ("Receptionist", "ic", "operations"),
    ("Sales Associate", "ic", "sales"), ("Associate", "ic", "other"), ("Engineer", "ic", "engineering"),
    ("Designer", "ic", "other"),
    # French.
    ("Président-Directeur Général", "c_level", "executive"), ("President Directeur General", "c_level", "executive"),
    ("PDG", "c_level", "executive"), ("Directeur Général", "c_level", "executive"),
    ("Directrice Marketing", "director", "marketing"), ("Directeur Commercial", "director", "sales"),
    ("Directeur des Systèmes d'Information", "director", "it"),
    ("Directeur Administratif et Financier", "director", "finance"),
    ("Responsable Marketing", "manager", "marketing"), ("Responsable des Achats", "manager", "procurement"),
    ("Responsable RH", "manager", "hr"), ("Chef de projet", "manager", "other"),
    ("Chef de produit", "manager", "product"), ("Chef d'équipe Support", "manager", "customer_success"),
    ("Ingénieur logiciel", "ic", "engineering"), ("Ingénieure DevOps", "ic", "engineering"),
    ("Ingénieur Commercial", "ic", "sales"), ("Développeur Full Stack", "ic", "engineering"),
    ("Comptable", "ic", "finance"), ("Juriste", "ic", "legal"), ("Stagiaire Marketing", "ic", "marketing"),
    ("Vice-Président Ventes", "vp", "sales"),
    # German.
    ("Geschäftsführer", "c_level", "executive"), ("Geschäftsführerin", "c_level", "executive"),
    ("Geschaeftsfuehrer", "c_level", "executive"), ("Vorstand", "c_level", "executive"),
    ("Vorstandsvorsitzender", "c_level", "executive"), ("Leiter Vertrieb", "director", "sales"),
    ("Leiterin Marketing", "director", "marketing"), ("Abteilungsleiter Einkauf", "director", "procurement"),
    ("Bereichsleiter IT", "director", "it"), ("Teamleiter Kundenservice", "manager", "customer_success"),
    ("Projektleiter", "manager", "other"), ("Vertriebsmitarbeiter", "ic", "sales"),
    ("Softwareentwickler", "ic", "engineering"), ("Ingenieur", "ic", "engineering"),
    ("Werkstudent Marketing", "ic", "marketing"), ("Buchhalter", "ic", "finance"),
    ("Personalreferentin", "ic", "hr"),
    # Spanish and Portuguese.
    ("Director Comercial", "director", "sales"), ("Directora de Marketing", "director", "marketing"),
    ("Director General", "c_level", "executive"), ("Gerente General", "director", "executive"),
    ("Gerente de Ventas", "manager", "sales"), ("Jefe de Compras", "manager", "procurement"),
    ("Jefa de Recursos Humanos", "manager", "hr"), ("Ingeniero de Software", "ic", "engineering"),
    ("Analista de Datos", "ic", "data"), ("Consejero Delegado", "c_level", "executive"),
    ("Presidente", "c_level", "executive"), ("Vicepresidente de Ventas", "vp", "sales"),
    ("Ejecutivo de Cuentas", "ic", "sales"), ("Diretor de Vendas", "director", "sales"),
    ("Diretora Financeira", "director", "finance"), ("Gerente de TI", "manager", "it"),
    ("Engenheiro de Software", "ic", "engineering"), ("Analista de Dados", "ic", "data"),
    ("Sócio Fundador", "c_level", "executive"),
    # Italian and Dutch.
    ("Direttore Commerciale", "director", "sales"), ("Direttore Generale", "c_level", "executive"),
    ("Amministratore Delegato", "c_level", "executive"), ("Responsabile Acquisti", "manager", "procurement"),
    ("Ingegnere", "ic", "engineering"), ("Algemeen Directeur", "c_level", "executive"),
    ("Verkoopleider", "director", "sales"), ("Teamleider Klantenservice", "manager", "customer_success"),
    ("Oprichter", "c_level", "executive"), ("Inkoper", "ic", "procurement"),
]

SENIORITY_LEVELS = ("c_level", "vp", "director", "manager", "ic")
DEPARTMENTS = ("executive", "sales", "marketing", "customer_success", "product", "engineering", "data", "it",
               "finance", "procurement", "operations", "hr", "legal", "other")


def test_the_table_holds_over_100_distinct_titles_and_only_known_labels() -> None:
    titles = [t for t, _, _ in TITLES]
    assert len(titles) == len(set(titles)) >= 100
    assert {s for _, s, _ in TITLES} == set(SENIORITY_LEVELS)
    assert {d for _, _, d in TITLES} == set(DEPARTMENTS)


@pytest.mark.parametrize(("title", "level", "dept"), TITLES)
def test_title_gives_seniority_and_department(title: str, level: str, dept: str) -> None:
    titles = pd.Series([title], dtype="object")
    assert (seniority(titles)[0], department(titles)[0]) == (level, dept)


def test_the_whole_table_at_once_matches_title_by_title() -> None:
    titles = pd.Series([t for t, _, _ in TITLES] * 3, dtype="object")
    assert seniority(titles).tolist() == [s for _, s, _ in TITLES] * 3
    assert department(titles).tolist() == [d for _, _, d in TITLES] * 3


def test_every_generator_title_gets_the_seniority_it_is_listed_under() -> None:
    listed = [(title, level) for level, titles in GENERATOR_TITLES.items() for title in titles]
    # The generator also writes 5% of titles in lower case.
    titles = pd.Series([t for t, _ in listed] + [t.lower() for t, _ in listed], dtype="object")
    assert seniority(titles).tolist() == [level for _, level in listed] * 2
    table = {t for t, _, _ in TITLES}
    assert [t for t, _ in listed if t not in table] == []  # so their departments are pinned above too


@pytest.mark.parametrize("blank", [None, np.nan, pd.NA, "", "   ", " - ", "/"])
def test_a_blank_title_is_unknown(blank: object) -> None:
    titles = pd.Series(["CEO", blank], dtype="object")
    assert seniority(titles).tolist() == ["c_level", "unknown"]
    assert department(titles).tolist() == ["executive", "unknown"]


@pytest.mark.parametrize("dtype", ["object", "string", "str", "category"])
def test_result_is_text_aligned_with_the_input_index(dtype: str) -> None:
    titles = pd.Series(["VP Sales", None, "Intern", "VP Sales"], index=[10, 3, 7, 5], dtype=dtype)
    out = seniority(titles)
    assert out.dtype == "str" and out.index.equals(titles.index)
    assert out.tolist() == ["vp", "unknown", "ic", "vp"]
    assert department(titles).tolist() == ["sales", "unknown", "other", "sales"]
    assert seniority(titles.iloc[:0]).tolist() == []


def test_rules_run_on_the_distinct_titles_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = contact.normalise_titles

    def spy(titles: pd.Series) -> pd.Series:
        seen.append(len(titles))
        return real(titles)

    monkeypatch.setattr(contact, "normalise_titles", spy)
    distinct = [t for t, _, _ in TITLES]
    rng = np.random.default_rng(0)
    titles = pd.Series(np.array(distinct, dtype=object)[rng.integers(0, len(distinct), 200_000)], dtype="object")
    expected = dict(zip(distinct, seniority(pd.Series(distinct, dtype="object")), strict=True))
    seen.clear()
    assert seniority(titles).tolist() == [expected[t] for t in titles]
    assert seen == [len(set(titles))]


def test_titles_are_normalised_before_matching() -> None:
    raw = ["  Président–Directeur  Général ", "Sr. Data Eng.", "VP, Data & Analytics", "GESCHÄFTSFÜHRER/CEO",
           "Chef d'équipe", "R&D_Lead (EMEA)"]
    expected = ["president directeur general", "sr data eng", "vp data analytics", "geschaftsfuhrer ceo",
                "chef d equipe", "r d lead emea"]
    assert normalise_titles(pd.Series(raw, dtype="object")).tolist() == expected
    assert [normalise_title(t) for t in raw] == expected


def test_default_rules_are_loaded_once_and_declare_the_documented_labels() -> None:
    rules = default_title_rules()
    assert default_title_rules() is rules
    assert rules.seniority_levels == SENIORITY_LEVELS
    assert rules.departments == DEPARTMENTS
    assert {r.label for r in rules.seniority} <= set(SENIORITY_LEVELS)
    assert {r.label for r in rules.department} <= set(DEPARTMENTS)


OVERRIDE = """
departments:
  revops: revenue operations, a department of its own here
seniority:
  - level: c_level
    note: our chiefs of staff sit on the executive team
    patterns: [chief of staff]
  - level: manager
    patterns: ['(rain|storm)maker']
department:
  - department: revops
    patterns: [revenue operations, RevOps]
"""


def test_an_override_file_is_tried_before_the_built_in_rules(tmp_path: Path) -> None:
    path = tmp_path / "our_titles.yaml"
    path.write_text(OVERRIDE, encoding="utf-8")
    rules = load_title_rules(path)
    titles = pd.Series(["Chief of Staff", "Head Rainmaker", "Revenue Operations Analyst", "VP Sales", None])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a capturing group in a pattern is fine
        assert seniority(titles, rules).tolist() == ["c_level", "manager", "ic", "vp", "unknown"]
        assert department(titles, rules).tolist() == ["executive", "other", "revops", "sales", "unknown"]
    assert rules.departments[-1] == "revops"
    # The packaged rules are untouched.
    assert seniority(titles).tolist() == ["director", "director", "ic", "vp", "unknown"]
    assert department(titles).tolist() == ["executive", "other", "sales", "sales", "unknown"]


def test_an_override_file_may_hold_a_single_section(tmp_path: Path) -> None:
    path = tmp_path / "titles.yaml"
    path.write_text("department:\n  - department: legal\n    patterns: [notary]\n", encoding="utf-8")
    rules = load_title_rules(path)
    assert department(pd.Series(["Notary Public"]), rules)[0] == "legal"
    assert len(rules.seniority) == len(default_title_rules().seniority)


def test_a_bad_regex_raises_config_error_naming_the_rule_and_pattern(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("seniority:\n  - level: ic\n    patterns: [intern]\n"
                    "  - level: director\n    patterns: [head, 'head of (sales']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_title_rules(path)
    message = str(err.value)
    assert "bad.yaml: seniority rule 2 (level: director)" in message
    assert "'head of (sales'" in message and "not a valid regex" in message


@pytest.mark.parametrize(("text", "fragment"), [
    ("senority: []\n", "unknown key 'senority'"),
    ("seniority:\n  - level: vp\n    pattern: [vp]\n", "seniority rule 1: unknown key 'pattern'"),
    ("seniority:\n  - level: boss\n    patterns: [boss]\n", "level 'boss' is not one of c_level, vp"),
    ("department:\n  - department: sales\n    patterns: []\n", "patterns: expected a non-empty list"),
    ("department:\n  - department: sales\n    patterns: ['x?']\n", "matches an empty string"),
    ("department:\n  - department: sales\n    patterns: ['a)|(b']\n", "not a valid regex"),
    ("seniority: {level: vp}\n", "seniority: expected a list of rules"),
    ("departments: [Sales Ops]\n", "departments: expected a mapping (or list) of lower-case names"),
    ("- just a list\n", "expected a mapping"),
    ("seniority: [\n", "is not valid YAML"),
])
def test_an_invalid_override_file_raises_config_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"custom\.yaml") as err:
        load_title_rules(path)
    assert fragment in str(err.value)


def test_a_missing_override_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="title rules file not found"):
        load_title_rules(tmp_path / "nope.yaml")
