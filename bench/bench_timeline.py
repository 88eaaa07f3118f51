"""How long a --timeline page of N migrations takes to load and draw in headless chromium (issue 16: < 2 s at 2,000).

    python bench/bench_timeline.py [N ...]      # default: 200 2000 4000; needs chromium, chromium-driver, selenium

Each size is loaded three times in a fresh profile; the median is printed. A measurement, not a test: the
machines are shared, so the figure goes to docs/benchmarks.md, never into an assert.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostmap.timeline import build_timeline
from hostmap.timeline_html import write_html
from test_timeline_browser import _driver, _plan

COUNT_BARS = "return document.querySelectorAll('.barlayer .point').length;"


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        driver = _driver(Path(tmp) / "profile")
        try:
            for n in sizes:
                page = Path(tmp) / f"timeline-{n}.html"
                write_html(build_timeline(_plan(n, max(n // 10, 2)), title=f"{n} migrations"), page)
                times = []
                for _ in range(3):
                    began = time.monotonic()
                    driver.get(page.as_uri())
                    bars = driver.execute_script(COUNT_BARS)
                    times.append(time.monotonic() - began)
                    assert bars == n, f"{bars} bars drawn for {n} migrations"
                size_mb = page.stat().st_size / 1e6
                runs = ", ".join(f"{t:.2f}" for t in times)
                print(f"{n:6d} migrations  page {size_mb:5.1f} MB  load and draw: first {times[0]:.2f} s, "
                      f"median {statistics.median(times):.2f} s  (runs {runs})")
        finally:
            driver.quit()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [200, 2000, 4000])
