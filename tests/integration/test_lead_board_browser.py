"""The lead board in a real (headless) Chromium: sorting, cards, and no script injection.

Needs Debian's chromium and chromium-driver (``tools/install-browser.sh``); selenium-manager is never
used because it downloads drivers from the internet. Missing binaries skip the test locally but fail
it when CI=true, so CI cannot pass by silently skipping.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from pipeline.reporting.board import render_board

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = REPO / "test-artifacts" / "lead_board.png"
EVIL = "<script>alert(1)</script>"
TIMEOUT_S = 10


def _lead(record_id: str, name: str, score: int, status: str = "champion") -> dict[str, Any]:
    return {
        "record_id": record_id, "name": name, "probability": score / 100, "score": score,
        "grade": "A" if score >= 75 else "B" if score >= 50 else "C" if score >= 25 else "D",
        "reasons_for": json.dumps([
            {"text": "Viewed the pricing page 4 times in the last 7 days", "contribution": 0.42},
            {"text": "Company size fits the deals we win", "contribution": 0.18},
        ]),
        "reasons_against": json.dumps([{"text": "No reply to the last two emails", "contribution": -0.27}]),
        "what_would_raise": json.dumps([{"text": f"A demo request would raise the score from {score} to "
                                                 f"{min(score + 22, 99)}", "from": score, "to": min(score + 22, 99)}]),
        "checklist": json.dumps([
            {"criterion": "budget", "label": "Budget", "status": "met",
             "reason": "Budget met: stated budget is 120000 (needs: at least 0.8 of deal size)"},
            {"criterion": "authority", "label": "Authority", "status": "not_met",
             "reason": "Authority not met: the contact is not a decision maker"},
            {"criterion": "timing", "label": "Timing", "status": "unknown", "reason": "Timing unknown: no date given"},
        ]),
        "next_step": "sales_ready" if score >= 70 else "nurture" if score >= 30 else "disqualify",
        "next_step_rule": "Sales ready: score at least 70 and budget met",
        "model_version": "20261122-3f9c2a1", "registry_version": None, "model_status": status,
        "as_of": "2026-11-20", "scored_at": "2026-11-22T08:00:00+00:00",
    }


SCORES = pd.DataFrame([
    _lead("L-001", "Acme & Sons \"Logistics\"", 41),
    _lead("L-002", EVIL, 88, status="unpromoted"),
    _lead("L-003", "Müller Bäckerei GmbH", 63),
    _lead("L-004", "Northwind Traders", 12),
    _lead("L-005", "O'Brien Consulting", 77),
])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests (run tools/install-browser.sh)")
    pytest.skip(f"{reason}; run tools/install-browser.sh to enable the browser tests")


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        _unavailable(f"missing {', '.join(missing)}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1400", "--hide-scrollbars"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    browser.set_page_load_timeout(TIMEOUT_S)
    try:
        yield browser
    finally:
        browser.quit()


def _scores_in_table(browser: WebDriver) -> list[int]:
    return [int(cell.text) for cell in browser.find_elements(By.CSS_SELECTOR, "#leads tbody td.score")]


def test_lead_board_in_chromium(driver: WebDriver, tmp_path: Path) -> None:
    board = render_board(SCORES, tmp_path / "lead_board.html", generated_at="2026-11-22 08:00 UTC")
    driver.get(board.as_uri())

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - the property raises when there is no alert
    assert len(driver.find_elements(By.TAG_NAME, "script")) == 1  # the board's own, nothing injected

    rows = driver.find_elements(By.CSS_SELECTOR, "#leads tbody tr")
    assert len(rows) == 5
    evil = driver.find_element(By.CSS_SELECTOR, "#leads tbody tr[data-record-id='L-002'] td.lead")
    assert evil.text == EVIL
    assert driver.find_element(By.ID, "unpromoted-warning").is_displayed()

    assert _scores_in_table(driver) == [88, 77, 63, 41, 12]
    score_header = driver.find_element(By.CSS_SELECTOR, "th[data-sort='score']")
    score_header.find_element(By.TAG_NAME, "button").click()
    assert _scores_in_table(driver) == [12, 41, 63, 77, 88]
    assert score_header.get_attribute("aria-sort") == "ascending"
    score_header.find_element(By.TAG_NAME, "button").click()
    assert _scores_in_table(driver) == [88, 77, 63, 41, 12]
    assert score_header.get_attribute("aria-sort") == "descending"

    card = driver.find_element(By.CSS_SELECTOR, "details.card[data-record-id='L-005']")
    assert card.get_attribute("open") is None
    reason = card.find_element(By.CSS_SELECTOR, "ul.bars.for li .bar-text")
    assert not reason.is_displayed()
    driver.find_element(By.CSS_SELECTOR, "#leads tbody tr[data-record-id='L-005'] td.lead a").click()
    assert card.get_attribute("open") is not None
    assert reason.is_displayed()
    assert reason.text == "Viewed the pricing page 4 times in the last 7 days"
    assert "Budget met: stated budget is 120000" in card.text

    driver.execute_script("window.scrollTo(0, 0);")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")
    assert SCREENSHOT.stat().st_size > 5 * 1024
