"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` package; ``make
setup-browser``) driven by Playwright, for the browser test and the screenshots under ``docs/``.

Playwright never downloads a browser here: it launches the system Chromium
(``$WORKBENCH_CHROMIUM``, else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on the PATH).
``workbench report --screenshots DIR`` takes the screenshots committed under ``docs/``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..core.errors import WorkbenchError

# Offline machines refuse Chromium's background connections (updates, sync, safe browsing):
# without these flags it retries them during the whole session.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    """The Chromium executable to drive, or None when there is none."""
    configured = os.environ.get("WORKBENCH_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def why_no_browser() -> str | None:
    """Why the report cannot be opened in a browser here (None: it can)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if find_chromium() is None:
        return "no Chromium found (make setup-browser installs Debian's chromium; or set WORKBENCH_CHROMIUM)"
    return None


@contextlib.contextmanager
def open_page(html: str | Path, width: int = 1400, height: int = 900) -> Iterator[tuple[object, list]]:
    """A Playwright page showing ``html`` (a file), and the list its console errors and uncaught
    page errors are appended to."""
    reason = why_no_browser()
    if reason:
        raise WorkbenchError(f"cannot open the report in a browser: {reason}")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="workbench-chromium-") as profile, sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            profile, executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            page.on("console", lambda message: errors.append(f"console {message.type}: {message.text}")
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            # anything but the file itself would be a network request: the report must make none
            page.on("request", lambda request: errors.append(f"request: {request.url}")
                    if not request.url.startswith(("file:", "data:", "about:")) else None)
            page.goto(Path(html).resolve().as_uri())
            page.wait_for_load_state("load")
            yield page, errors
        finally:
            context.close()


def screenshots(html: str | Path, out_dir: str | Path, dataset: str, pair_anchor: str | None = None,
                query_anchor: str | None = None) -> list[Path]:
    """PNG screenshots of a dataset's leaderboard and of one drill-down (a query of a pair,
    opened by clicking it, as a reader would)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with open_page(html, width=1900, height=1000) as (page, errors):
        section = page.locator(f"section.dataset[data-dataset='{dataset}']")
        if section.count() == 0:
            raise WorkbenchError(f"the report has no dataset {dataset!r}", html)
        table = section.locator("table.leaderboard")
        # wide enough for the whole leaderboard (it scrolls sideways inside its box when wider)
        width = table.evaluate("table => table.scrollWidth + 2 * table.getBoundingClientRect().left")
        if width > 1900:
            page.set_viewport_size({"width": int(width) + 1, "height": 1000})
        page.select_option(f"select[data-table='{table.get_attribute('id')}']", "all")
        table.screenshot(path=str(out / f"leaderboard-{dataset}.png"))
        written.append(out / f"leaderboard-{dataset}.png")
        if pair_anchor and query_anchor:
            query = page.locator(f"details[id='{query_anchor}']")
            query.locator("summary").click()
            page.locator(f"section[id='{pair_anchor}'] h4").scroll_into_view_if_needed()
            query.screenshot(path=str(out / f"drilldown-{dataset}.png"))
            written.append(out / f"drilldown-{dataset}.png")
        if errors:
            raise WorkbenchError("the report logged errors in the browser: " + "; ".join(errors), html)
    return written
