"""The web viewer in a real browser: Debian's chromium, driven through chromium-driver by selenium, watches a
running `edgemtl camera` — frames arrive, the statistics change, the results and the legend show — and the
same page without the token is a 401. CI installs the browser and sets EDGEMTL_REQUIRE_BROWSER=1, so a
missing browser fails there instead of skipping."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cli.test_viewer_cli import wait_for_port
from tests.helpers import popen_edgemtl, write_mjpeg_avi
from tests.runtime.test_viewer import free_port

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# The machine's closed network: nothing of Chromium's own may try to reach out (refused connections, delays).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,800",
)


@pytest.fixture
def browser(tmp_path):
    missing = [path for path in (CHROMIUM, DRIVER) if not Path(path).exists()]
    if missing:
        message = f"{', '.join(missing)} missing: apt-get install -y chromium chromium-driver"
        if os.environ.get("EDGEMTL_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)  # the driver given: no download
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def wait_until(condition, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.mark.slow
def test_the_page_shows_live_frames_and_statistics_and_needs_its_token(exported_model, tmp_path, browser):
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 1500, size=(96, 128), fps=25.0)  # 60 s paced: outlives the test
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    process = popen_edgemtl(
        ["camera", clip, "-m", exported_model, "-o", base.rstrip("/"), "--pace", "--token", "s3cret"]
    )
    try:
        wait_for_port(port, process)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base, timeout=10)
        assert refused.value.code == 401
        browser.get(base)  # the browser without the token: the 401 page, no viewer
        assert "401" in browser.find_element("tag name", "body").text
        assert not browser.find_elements("id", "frame")

        browser.get(base + "?token=s3cret")
        wait_until(lambda: text(browser, "frame-count").isdigit(), what="a first frame's state")
        wait_until(lambda: browser.execute_script("return document.getElementById('frame').naturalWidth") > 0)
        first_frame, first_src = (
            int(text(browser, "frame-count")),
            browser.find_element("id", "frame").get_attribute("src"),
        )
        seen_stats = {(text(browser, "fps"), text(browser, "p50"), text(browser, "p99"))}
        wait_until(lambda: int(text(browser, "frame-count")) >= first_frame + 20, what="20 more frames")
        for _ in range(15):  # the statistics refresh twice a second
            seen_stats.add((text(browser, "fps"), text(browser, "p50"), text(browser, "p99")))
            time.sleep(0.2)
        assert browser.find_element("id", "frame").get_attribute("src") != first_src  # a new image was shown
        assert len(seen_stats) > 1, seen_stats
        assert float(text(browser, "fps")) > 5  # paced at 25 FPS
        assert text(browser, "dropped").isdigit()
        assert text(browser, "status") == "live"
        results, legend = text(browser, "results"), text(browser, "legend")
        assert "scene" in results and "segmentation" in results
        assert "obstacle" in legend and "classification" in legend
        drawn = browser.execute_script(
            "const c = document.getElementById('chart'); const d = c.getContext('2d').getImageData(0, 0, c.width,"
            " c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;"
        )
        assert drawn > 100  # the live chart has lines on it
        browser.save_screenshot(str(tmp_path / "viewer.png"))
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 143, stderr
    finally:
        process.kill()
