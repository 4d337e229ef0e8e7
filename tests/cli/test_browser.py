"""The web viewer in a real browser: Debian's chromium, driven through chromium-driver by selenium, watches a
running `edgemtl camera` — frames arrive, the statistics change, the results and the legend show — and the
same page without the token is a 401; with `--track` on a drive of known objects, the frames it shows have
the boxes drawn where its results say the objects are, and the track ids it lists follow the objects. CI
installs the browser and sets EDGEMTL_REQUIRE_BROWSER=1, so a missing browser fails there instead of skipping."""

from __future__ import annotations

import base64
import os
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cli.test_viewer_cli import wait_for_port
from tests.helpers import popen_edgemtl, write_mjpeg_avi
from tests.runtime.drive_kit import train_detector, truth, write_drive
from tests.runtime.objects_kit import CLASSES
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


# --- boxes and track ids on a drive of known objects (issue 23) ------------------------------------------------

# One look at the page, in one go (no message is handled meanwhile): the shown frame's pixels, and the objects the
# Results panel lists for it (class, track id, box, swatch colour, held); null while the image and the panel are of
# different frames (the state of the next frame arrives before its image).
LOOK = """
const img = document.getElementById("frame");
if (!img.complete || !img.naturalWidth || img.dataset.frame !== document.getElementById("frame-count").textContent) {
  return null;
}
const canvas = document.createElement("canvas");
canvas.width = img.naturalWidth;
canvas.height = img.naturalHeight;
canvas.getContext("2d").drawImage(img, 0, 0);
const rows = [...document.querySelectorAll("#results .object")].map((row) => ({
  name: row.querySelector(".name").textContent,
  track: row.querySelector(".track").textContent,
  box: row.title,
  colour: getComputedStyle(row.querySelector(".swatch")).backgroundColor,
  held: row.classList.contains("held"),
}));
return { frame: Number(img.dataset.frame), rows: rows, png: canvas.toDataURL("image/png") };
"""
MARGIN = 20  # how much nearer a line's pixel is to the box colour than the pixel outside it


@pytest.fixture(scope="module")
def drive_detector(tmp_path_factory) -> Path:
    return train_detector(tmp_path_factory.mktemp("drive") / "detector.onnx")


def outline_share(image: np.ndarray, box: list[float], colour: np.ndarray) -> float:
    """Share of the pixels along a box's left, right and bottom sides (its label's tab hides the top one) nearer
    the box colour than the pixels two steps outside them. A 1-pixel line's own colour does not survive the
    JPEG (its chroma is subsampled), this contrast does: about 1 where the box is drawn, 0 where it is not. A
    side is looked for a pixel either side of where the results put it (rounding); one on the border is left out."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (round(v) for v in box)
    away = np.linalg.norm(image.astype(np.float32) - colour, axis=-1)  # each pixel's distance from the box colour
    rows, columns = np.arange(y1 + 2, y2 - 1), np.arange(x1 + 2, x2 - 1)
    sides = []  # per side: (the line, the pixels two steps outside it) where the results put it, and 1 px either side
    if x1 >= 3:
        sides.append([(away[rows, x1 + at], away[rows, x1 + at - 2]) for at in (-1, 0, 1)])
    if x2 <= width - 4:
        sides.append([(away[rows, x2 + at], away[rows, x2 + at + 2]) for at in (-1, 0, 1)])
    if y2 <= height - 4:
        sides.append([(away[y2 + at, columns], away[y2 + at + 2, columns]) for at in (-1, 0, 1)])
    return float(np.mean([max(np.mean(line + MARGIN < outside) for line, outside in side) for side in sides]))


def iou(a, b) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.slow
def test_the_page_shows_the_boxes_drawn_and_track_ids_that_follow_the_objects(drive_detector, tmp_path, browser):
    video = write_drive(tmp_path / "drive.avi")  # 12 s: a person leaves the upper lane, another enters it
    port = free_port()
    process = popen_edgemtl(
        ["camera", video, "-m", drive_detector, "-o", f"http://127.0.0.1:{port}", "--pace", "--track"]
    )
    looks = []
    try:
        wait_for_port(port, process)
        browser.get(f"http://127.0.0.1:{port}/")
        while process.poll() is None:  # until the drive ends
            look = browser.execute_script(LOOK)
            if look and look["rows"]:
                looks.append(look)
            time.sleep(0.2)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    finally:
        process.kill()
    assert len(looks) >= 10, f"{len(looks)} looks at frames with objects"
    track_ids: dict[int, list[int]] = {}  # the drive's object id → the track ids the panel gave it, look by look
    for look in looks:
        image = cv2.imdecode(np.frombuffer(base64.b64decode(look["png"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        in_view = truth(look["frame"])
        for row in look["rows"]:
            box = [float(v) for v in re.findall(r"[\d.]+", row["box"].split("(")[0])]
            colour = np.array([int(v) for v in re.findall(r"\d+", row["colour"])[:3]][::-1], np.float32)  # BGR
            share = outline_share(image, box, colour)
            assert share > 0.75, f"frame {look['frame']}: no {row['name']} box drawn at {box} ({share:.2f})"
            if row["held"]:  # where the tracker expects an object it missed: drawn, but it may have left the view
                continue
            matches = [key for key, (_, where) in in_view.items() if iou(box, where) > 0.1]  # 0.1: slivers at edges
            assert len(matches) == 1, f"frame {look['frame']}: {row['name']} at {box} is none of {in_view}"
            assert row["name"] == CLASSES[in_view[matches[0]][0]]
            if row["track"].startswith("#"):  # "–": a track not yet confirmed
                track_ids.setdefault(matches[0], []).append(int(row["track"][1:]))
    assert sorted(track_ids) == [1, 2, 3], track_ids  # both people and the cone were listed with track ids
    for key, seen in track_ids.items():
        assert len(seen) >= 2 and len(set(seen)) == 1, f"object {key}: track ids {seen}"  # its id held, look by look
    first, cone, second = (track_ids[key][0] for key in (1, 2, 3))
    assert len({first, cone, second}) == 3  # the upper lane's id changed when the second person came
