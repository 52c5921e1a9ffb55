"""Driving Debian's Chromium with Playwright (no browser download: the machine has none to
reach), and watching every page for CSP violations and requests to other origins."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

CHROMIUM = os.environ.get("CREDITGATE_CHROMIUM", "/usr/bin/chromium")
# As root Chromium needs --no-sandbox; without the background-networking flags it keeps
# trying to reach Google's services, which this network refuses (noisily).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
# A securitypolicyviolation event becomes a console error the watcher collects. Playwright
# injects init scripts itself, outside the page's CSP.
REPORT_CSP = """document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});"""


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return (f"{CHROMIUM} is missing: install Debian's chromium package (`make tools` does "
                "as root) to run the console's browser tests")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[dev]'"
    return None


@dataclass
class Watcher:
    """Everything a page said or asked for that a test must find clean."""

    origin: str
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("request", lambda req: self.requests.append(req.url))
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning") or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    @property
    def foreign(self) -> list[str]:
        return [u for u in self.requests
                if not (u.startswith(self.origin + "/") or u == self.origin)]
