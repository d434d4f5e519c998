#!/usr/bin/env python3
"""Screenshots of the customer portal's main pages, desktop and phone width, for the README.

    .venv/bin/python scripts/screenshots.py [docs/screenshots]

Starts ``tarifa serve`` on a fresh SQLite database in a temporary directory with the demo data
set (plus a month of recent calls posted through the API), logs in as the demo customer
``acmecorp`` in Debian's Chromium (Playwright, never ``playwright install``) and saves
``portal-<page>-<desktop|phone>.png``. Takes about a minute.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from tests.portal_server import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD, recent_calls, serving  # noqa: E402

SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
USER = "acmecorp"


def _pages(page: Page, base: str, out: Path, size: str) -> list[Path]:
    saved = []

    def shot(name: str) -> None:
        path = out / f"portal-{name}-{size}.png"
        page.screenshot(path=str(path), full_page=size == "desktop")
        saved.append(path)

    page.goto(f"{base}/portal/login/")
    shot("login")
    page.get_by_label("Web user name").fill(USER)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/portal/")
    shot("home")
    page.goto(f"{base}/portal/calls/")
    shot("calls")
    page.goto(f"{base}/portal/accounts/")
    page.get_by_role("link", name=f"Edit settings of {USER}-sip_user-1").click()
    page.get_by_role("link", name="Account restrictions").click()
    if page.get_by_label("Allow international calls").is_checked():  # so that the call abroad is refused
        page.get_by_label("Allow international calls").uncheck()
        page.get_by_role("button", name="Save account restrictions").click()
    page.get_by_label("Max call time for international calls").fill("100000")
    page.get_by_role("button", name="Save account restrictions").click()
    shot("settings")
    page.goto(f"{base}/portal/why/")
    page.get_by_role("link", name="Why?").first.click()
    shot("why")
    page.goto(f"{base}/portal/profile/")
    shot("profile")
    page.context.clear_cookies()
    return saved


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else ROOT / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tarifa-screenshots-") as tmp:
        work = Path(tmp)
        servers = serving(work, f"sqlite:///{work / 'demo.sqlite3'}")
        server = next(servers)
        try:
            calls = recent_calls(f"{USER}1")
            calls.append(
                {
                    **calls[0],
                    "call_id": "refused-abroad",
                    "callee": "0114930901820",
                    "duration": 0,
                    "disposition": "failed",
                    "sip_code": 403,
                }
            )
            server.post_cdrs(calls)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for size, (width, height) in SIZES.items():
                    context = browser.new_context(viewport={"width": width, "height": height})
                    for path in _pages(context.new_page(), server.base, out, size):
                        print(path)
                    context.close()
                browser.close()
        finally:
            servers.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
