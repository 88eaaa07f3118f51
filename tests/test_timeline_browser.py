"""The timeline page in a real browser: Debian's chromium, headless, through its chromedriver (selenium).

In CI (`CI` set) a missing chromium fails the test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from hostmap.timeline import build_timeline
from hostmap.timeline_html import write_html

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path(os.environ.get("HOSTMAP_SCREENSHOT_DIR", tempfile.gettempdir())) / "hostmap-timeline.png"


def _plan(n_moves: int, n_hosts: int) -> dict[str, Any]:
    """A plan of `n_moves` one-per-source moves over `n_hosts` hosts, with a detour every 50 moves."""
    moves: list[dict[str, Any]] = []
    ends: dict[str, float] = {}
    for i in range(n_moves):
        source, target = f"cmp{i % n_hosts:04d}", f"cmp{(i * 7 + 3) % n_hosts:04d}"
        start = ends.get(source, 0.0)
        end = start + 10.0 + i % 13
        ends[source] = end
        moves.append({"step": i + 1, "server": f"vm{i:05d}", "id": f"id{i}", "flavor": "m1.large",
                      "source": source, "target": target, "final_target": target, "detour": False,
                      "after": [], "estimate_s": end - start, "ram_mb": 8192, "start_s": start, "end_s": end})
    for i in range(0, n_moves - 1, 50):  # a detour: the next move takes the same server on from the pivot
        moves[i]["detour"] = True
        moves[i + 1].update(id=moves[i]["id"], server=moves[i]["server"], source=moves[i]["target"])
    return {"moves": moves, "estimated_s": max(ends.values()), "lower_bound_s": 0.8 * max(ends.values())}


def _driver(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given, so selenium-manager never looks for (or downloads) one.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    """A headless chromium with a fresh profile; fails in CI when chromium is missing, else skips."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        message = f"{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    driver = _driver(tmp_path / "profile")
    yield driver
    driver.quit()


def test_timeline_renders_2000_bars_without_console_errors(browser: Any, tmp_path: Path) -> None:
    """A timeline of 2,000 migrations opens from a local file with one bar per move, no console error and nothing
    fetched from the network (how fast it loads is measured by bench/bench_timeline.py, not asserted here)."""
    plan = _plan(2000, 200)
    page = tmp_path / "timeline.html"
    write_html(build_timeline(plan, title="2,000 migrations"), page)
    browser.get(page.as_uri())
    bars = browser.execute_script(
        "const g = document.getElementById('hostmap-timeline');"
        "return g && g._fullLayout ? document.querySelectorAll('.barlayer .point').length : -1;")
    assert bars == 2000
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('file:'));")
    assert fetched == []
    small = build_timeline(_plan(24, 6), title="hostmap plan: 24 migrations on 6 hosts")
    write_html(small, tmp_path / "small.html")
    browser.set_window_size(1100, 520)
    browser.get((tmp_path / "small.html").as_uri())
    assert browser.execute_script("return document.querySelectorAll('.barlayer .point').length;") == 24
    browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 0
