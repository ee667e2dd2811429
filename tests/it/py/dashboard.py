"""The admin dashboard in headless Chromium, against a running wharf.

Usage: dashboard.py ADMIN_URL FTP_HOST FTP_PORT USER PASSWORD SCREENSHOT

A slow upload runs (the user's rate is limited by the server) while the page is open; the
script checks that its session and progress bar appear and advance, that the charts have
points, that a state-changing request without the CSRF token is refused, and that Kick
on the page ends the client's session (the client sees 421). Prints "ok" at the end.
"""

import ftplib
import io
import sys
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

admin, host, port, user, password, screenshot = sys.argv[1:7]
port = int(port)

outcome = {}


class Slow(io.RawIOBase):
    """An endless file: the server's rate limit keeps the upload slow."""

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), 16384)
        b[:n] = b"x" * n
        return n


def upload():
    ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=60)
    ftp.login(user, password)
    try:
        ftp.storbinary("STOR slow.bin", Slow(), blocksize=16384)
        outcome["reply"] = "finished"
    except ftplib.all_errors as e:
        # The data connection may fail first (it is closed under the upload); what the
        # server said on the control connection is what counts.
        try:
            outcome["reply"] = ftp.getline()
        except (OSError, EOFError):
            outcome["reply"] = str(e)


def wait(what, cond, limit=20.0):
    end = time.time() + limit
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit("timed out waiting for " + what)


opts = webdriver.ChromeOptions()
for a in [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
]:
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    threading.Thread(target=upload, daemon=True).start()
    driver.get(admin + "/")

    # The table is drawn again every second: read it in one step, in the page.
    ROW = (
        "const user = arguments[0];"
        "for (const r of document.querySelectorAll('#sessions tbody tr')) {"
        "  const t = r.querySelector('td.transfer');"
        "  if (r.querySelector('td.user').textContent === user && t && t.querySelector('.progress'))"
        "    return {id: r.dataset.id, bytes: parseInt(t.dataset.bytes, 10)};"
        "}"
        "return null;"
    )

    def row():
        return driver.execute_script(ROW, user)

    first = wait("the upload's session row with a progress bar", row)["bytes"]

    def advanced():
        r = row()
        return r["bytes"] if r and r["bytes"] > first else None

    later = wait("the upload to advance", advanced)
    print("progress", first, "->", later)

    points = wait(
        "the throughput chart to have points",
        lambda: int(driver.find_element(By.ID, "chart-throughput").get_attribute("data-points")) >= 2
        and driver.find_elements(By.CSS_SELECTOR, "#chart-throughput polyline"),
    )
    print("chart lines", len(points))

    # A state-changing request from the page without its CSRF token is refused.
    status = driver.execute_async_script(
        "const done = arguments[0];"
        "fetch('/reload', {method: 'POST', credentials: 'same-origin'}).then(r => done(r.status));"
    )
    assert status == 403, "reload without CSRF token: %s" % status
    print("no csrf ->", status)

    driver.save_screenshot(screenshot)

    # Kick from the page (its confirmation answered yes).
    driver.execute_script("window.confirm = () => true;")
    sid = row()["id"]
    driver.find_element(By.CSS_SELECTOR, '#sessions tr[data-id="%s"] button.kick' % sid).click()
    reply = wait("the client to see its session end", lambda: outcome.get("reply"))
    assert reply.startswith("421"), "the client saw: %r" % reply
    print("client saw", reply)
    wait("the row to go", lambda: row() is None)

    # Ban an address from the page, see it listed with its time left, lift it again.
    BANNED = (
        "return [...document.querySelectorAll('#bans tbody tr')]"
        ".map(r => r.textContent).filter(t => t.includes('192.0.2.7'));"
    )
    driver.find_element(By.ID, "ban-ip").send_keys("192.0.2.7")
    driver.find_element(By.ID, "ban-seconds").send_keys("600")
    driver.find_element(By.CSS_SELECTOR, "#ban-form button").click()
    listed = wait("the ban to be listed", lambda: driver.execute_script(BANNED))
    print("banned", listed[0])
    driver.execute_script(
        "for (const r of document.querySelectorAll('#bans tbody tr'))"
        "  if (r.textContent.includes('192.0.2.7')) r.querySelector('button.unban').click();"
    )
    wait("the ban to be lifted", lambda: not driver.execute_script(BANNED))
    print("ok")
finally:
    driver.quit()
