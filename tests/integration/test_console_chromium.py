"""
The web console in a real browser (issue 18): Debian's headless Chromium,
driven by Selenium through Debian's chromedriver, against the real service
under twistd on loopback.  The browser logs in with the keyboard, changes
the IMAP host on the SmartDiscover tab, sees the diff, applies it (a real
POX request over TLS then carries the new host), runs Set New Hostname
For All, sees a dead endpoint failing on the health page, and has a
cross-site form post refused.

A screenshot of each page is kept in C{_trial_temp/screenshots/} (or in
C{$SMARTDISCOVER_SCREENSHOTS}).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from twisted.trial.unittest import SkipTest

from tests.integration import SynchronousTestCase
from tests.integration import test_console_service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 30.0


def screenshots() -> Path:
    directory = Path(os.environ.get("SMARTDISCOVER_SCREENSHOTS") or
                     Path("screenshots")).absolute()  # trial runs in _trial_temp/
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def chromium() -> Any:
    """
    A headless Chromium, or a skip saying what is missing (a failure under
    CI=true).
    """
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise SkipTest("selenium is not installed (pip install '.[test]')") from None
    for program in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(program) is None:
            raise SkipTest(f"{program} is missing (sh tests/install-debian-packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-sync"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class _Page(BaseHTTPRequestHandler):
    """
    Another site: a page whose form posts to the console.
    """

    target = ""

    def do_GET(self) -> None:
        body = (f'<!DOCTYPE html><html><body><form id="attack" method="post" '
                f'action="{self.target}/logout"><input type="hidden" name="csrf" '
                f'value="guess"><button type="submit" id="go">Win a prize</button>'
                f'</form></body></html>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ConsoleInChromiumTests(SynchronousTestCase):
    timeout = 180

    def setUp(self) -> None:
        self.driver = chromium()
        self.addCleanup(self.driver.quit)
        self.service_case = test_console_service.ConsoleServiceTests("test_refusals")
        self.service_case.mktemp = self.mktemp  # type: ignore[method-assign]
        self.service_case.addCleanup = self.addCleanup  # type: ignore[method-assign]
        self.service_case.start(dead_imap=True)
        self.origin = f"http://127.0.0.1:{self.service_case.console}"

    def shot(self, step: str) -> None:
        name = f"{self.id().rsplit('.', 1)[-1]}-{step}.png"
        self.driver.save_screenshot(str(screenshots() / name))

    def until(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        self.fail(f"{what} did not happen; the page: {self.driver.page_source[:2000]}")

    def by_id(self, name: str) -> Any:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.ID, name)

    def button(self, text: str) -> Any:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.XPATH, f"//button[normalize-space()='{text}']")

    def log_in(self) -> None:
        from selenium.webdriver.common.keys import Keys
        self.driver.get(self.origin + "/")
        self.until(lambda: self.driver.title.startswith("Log in"), "the login page")
        self.shot("login")
        # The keyboard only: the name field has the focus, Tab to the password.
        active = self.driver.switch_to.active_element
        active.send_keys("alice", Keys.TAB, test_console_service.ADMIN_PASSWORD, Keys.ENTER)
        self.until(lambda: self.driver.title.startswith("Health"), "the health page")

    def test_login_health_and_logout(self) -> None:
        """
        Log in with the keyboard; the health page lists the dead IMAP
        endpoint as failing; the cookie is HttpOnly and SameSite=Strict;
        logging out leaves a worthless cookie.
        """
        self.log_in()

        def failing() -> bool:
            self.driver.refresh()
            return "failing" in self.driver.page_source
        self.until(failing, "the dead endpoint shown as failing")
        self.shot("health")
        cookie = self.driver.get_cookie("sd_session")
        self.assertTrue(cookie["httpOnly"])
        self.assertEqual(cookie["sameSite"], "Strict")
        self.button("Log out").click()
        self.until(lambda: self.driver.title.startswith("Log in"), "the login page again")
        self.driver.get(self.origin + "/")
        self.assertTrue(self.driver.title.startswith("Log in"))

    def test_wrong_password(self) -> None:
        from selenium.webdriver.common.keys import Keys
        self.driver.get(self.origin + "/login")
        self.by_id("name").send_keys("alice")
        self.by_id("password").send_keys("not the password", Keys.ENTER)
        self.until(lambda: "is wrong" in self.driver.page_source, "the error")
        self.shot("wrong-password")
        self.assertEqual(self.by_id("login-error").text, "The name or the password is wrong.")
        self.assertIsNone(self.driver.get_cookie("sd_session"))

    def test_change_imap_host_and_hostname(self) -> None:
        """
        The SmartDiscover tab: the IMAP host changed, the diff seen, applied;
        a real POX request then carries it.  Then Set New Hostname For All.
        """
        self.log_in()
        self.driver.get(self.origin + "/settings")
        self.shot("settings")
        host = self.by_id("imap.host")
        host.clear()
        host.send_keys("imap.example.test")
        self.button("Preview the change").click()
        self.until(lambda: "What changes" in self.driver.page_source, "the diff")
        self.shot("settings-diff")
        self.assertIn("+host = imap.example.test", self.driver.page_source)
        self.button("Apply and reload").click()
        self.until(lambda: "Saved and reloaded." in self.driver.page_source, "the save")
        self.assertEqual(self.service_case.imap_server(), "imap.example.test")

        self.driver.get(self.origin + "/hostname")
        new = self.by_id("new")
        new.send_keys("mx.example.test")
        self.button("Preview").click()
        self.until(lambda: "What changes" in self.driver.page_source, "the preview")
        self.shot("hostname-preview")
        self.button("Apply and reload").click()
        self.until(lambda: "is now mx.example.test" in self.driver.page_source, "the rename")
        self.shot("hostname-done")
        self.assertNotIn("mail.example.test", self.service_case.config.read_text())

        self.driver.get(self.origin + "/client?address=demo%40example.test")
        self.shot("client")
        self.assertIn("mx.example.test", self.driver.page_source)

    def test_cross_site_post_refused(self) -> None:
        """
        A page of another site posts a form to the console: refused (the
        browser sends no cookie with it, SameSite=Strict, and the console
        refuses it by its origin), and the session still works.
        """
        self.log_in()
        _Page.target = self.origin
        other = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        threading.Thread(target=other.serve_forever, daemon=True).start()
        self.addCleanup(other.server_close)
        self.addCleanup(other.shutdown)
        self.driver.get(f"http://localhost:{other.server_address[1]}/")
        self.by_id("go").click()
        self.until(lambda: "Refused" in self.driver.title or "ended" in self.driver.title,
                   "the refusal")
        self.shot("cross-site")
        self.driver.get(self.origin + "/")
        self.assertTrue(self.driver.title.startswith("Health"))
