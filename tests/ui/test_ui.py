#!/usr/bin/env python3
"""`make test-ui`: the page of `oir serve` in a real browser (headless Chromium
driven by Selenium), against a server on a free loopback port with the shipped
tiny model.

Steps: load the page, open the demo photo (examples/shapes/demo.png), paint a
mask stroke over the red circle for pair 1, add a second pair with an automatic
mask, run at a small T, wait for the result, click another candidate of pair 1,
check the edited image changed (and the clicked candidate is now the chosen
one), toggle before/after, download report.json and check it records the pick;
then open a JPEG with an EXIF rotation and check it is shown as oir reads it
(unrotated).
Screenshots go to the shots folder (under the build folder). The test fails on
any error the browser console reports (a failed request, a script error).

Usage: test_ui.py --oir build/release/oir --shots build/release/ui [--steps 6]
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROMPT = "a red circle on the left and a blue triangle on the right on a gray background"

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}")
    return ok


def start_server(oir, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([oir, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=log, text=True,
                            cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}/"
    proc.kill()
    raise SystemExit(f"test-ui: oir serve did not start (see {log_path})")


def make_driver(download_dir):
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,1300", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-default-apps", "--no-default-browser-check"):
        opts.add_argument(a)
    for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(path):
            opts.binary_location = path
            break
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("prefs", {
        "download.default_directory": download_dir,
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
        "safebrowsing.enabled": False,
    })
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
    return driver


def image_data(driver, elem_id):
    """The pixels of an <img> as a data URL (same origin, so readable)."""
    return driver.execute_script(
        "const i = document.getElementById(arguments[0]);"
        "if (!i.complete || !i.naturalWidth) return null;"
        "const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;"
        "c.getContext('2d').drawImage(i, 0, 0); return c.toDataURL('image/png');", elem_id)


def paint(driver, overlay, x0, y0, x1, y1, photo_side):
    """A brush stroke from (x0, y0) to (x1, y1) in photo pixels."""
    w = overlay.size["width"]
    h = overlay.size["height"]
    sx, sy = w / photo_side, h / photo_side

    def off(x, y):  # offsets from the element's centre, as Selenium 4 takes them
        return int(x * sx - w / 2), int(y * sy - h / 2)

    ax, ay = off(x0, y0)
    bx, by = off(x1, y1)
    chain = ActionChains(driver)
    chain.move_to_element_with_offset(overlay, ax, ay).click_and_hold()
    steps = 8
    for i in range(1, steps + 1):
        chain.move_to_element_with_offset(overlay, ax + (bx - ax) * i // steps, ay + (by - ay) * i // steps)
    chain.release().perform()


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oir", default="build/release/oir")
    ap.add_argument("--shots", default="build/release/ui")
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    oir = os.path.abspath(args.oir)
    shots = os.path.abspath(args.shots)
    os.makedirs(shots, exist_ok=True)
    downloads = tempfile.mkdtemp(prefix="oir_ui_dl_")
    t_start = time.time()
    proc, url = start_server(oir, os.path.join(shots, "serve.log"))
    driver = None
    try:
        driver = make_driver(downloads)
        wait = WebDriverWait(driver, 30)
        long_wait = WebDriverWait(driver, 240)
        driver.get(url)
        wait.until(lambda d: d.find_element(By.ID, "model").text.strip() != "")
        check("tiny-shapes" in driver.find_element(By.ID, "model").text, "page loaded, /api/info shows the model")

        # open the demo photo
        demo = os.path.join(REPO, "examples", "shapes", "demo.png")
        driver.find_element(By.ID, "file").send_keys(demo)
        wait.until(lambda d: d.find_element(By.ID, "stage").is_displayed())
        check("64x64" in driver.find_element(By.ID, "geometry").text, "the photo is shown at the working size 64x64")

        driver.find_element(By.ID, "prompt").send_keys(PROMPT)
        rows = driver.find_elements(By.CSS_SELECTOR, "#pairs .pair")
        rows[0].find_element(By.CSS_SELECTOR, "input.from").send_keys("red circle")
        rows[0].find_element(By.CSS_SELECTOR, "input.to").send_keys("green square")
        # paint pair 1's mask over the red circle (x 4..21, y 23..40 of the 64x64 photo)
        overlay = driver.find_element(By.ID, "overlay")
        rows[0].find_element(By.CSS_SELECTOR, "input.from").click()  # pair 1 active
        # a brush about 9 photo pixels wide: three strokes cover the circle, as a user paints it
        driver.execute_script("document.getElementById('brush-size').value = 60")
        for y in (26, 31, 36):
            paint(driver, overlay, 6, y, 19, y, 64)
        painted = driver.execute_script(
            "const c = document.getElementById('overlay'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;")
        check(painted > 50, f"the stroke painted the mask ({painted} overlay pixels)")

        # a second pair, its mask inferred
        driver.find_element(By.ID, "add-pair").click()
        rows = driver.find_elements(By.CSS_SELECTOR, "#pairs .pair")
        check(len(rows) == 2, "a second pair added")
        rows[1].find_element(By.CSS_SELECTOR, "input.from").send_keys("blue triangle")
        rows[1].find_element(By.CSS_SELECTOR, "input.to").send_keys("yellow star")
        Select(rows[1].find_element(By.CSS_SELECTOR, "select.mode")).select_by_value("auto")

        steps = driver.find_element(By.ID, "steps")
        steps.clear()
        steps.send_keys(str(args.steps))
        driver.save_screenshot(os.path.join(shots, "1_ready.png"))

        run = driver.find_element(By.ID, "run")
        check(run.is_enabled(), "Run is enabled")
        run.click()
        long_wait.until(lambda d: d.find_element(By.ID, "result-panel").is_displayed()
                        and d.find_element(By.ID, "state").text == "done"
                        and len(d.find_elements(By.CSS_SELECTOR, ".pair-result")) == 2)
        long_wait.until(lambda d: image_data(d, "img-result") is not None)
        check(driver.find_element(By.ID, "error").is_displayed() is False, "no error shown")
        stage_names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#progress > span:nth-child(3n+1)")]
        check("inversion" in stage_names and "mask" in stage_names, f"progress per stage shown ({stage_names})")
        first = driver.find_element(By.CSS_SELECTOR, ".pair-result")
        tiles = first.find_elements(By.CSS_SELECTOR, ".cand")
        check(len(tiles) == args.steps, f"pair 1 shows its {args.steps} candidates")
        chosen = [t for t in tiles if "chosen" in t.get_attribute("class")]
        check(len(chosen) == 1, "one candidate of pair 1 is marked chosen")
        chosen_step = int(chosen[0].get_attribute("data-step"))
        check(len(first.find_elements(By.CSS_SELECTOR, "svg.chart polyline")) == 3, "pair 1's chart has 3 curves")
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(os.path.join(shots, "2_result.png"))
        before = image_data(driver, "img-result")

        # click another candidate of pair 1
        # (the rendered one nearest the choice: a re-pick a user would try)
        other = min((t for t in tiles if int(t.get_attribute("data-step")) != chosen_step
                     and t.find_elements(By.TAG_NAME, "img")),
                    key=lambda t: (abs(int(t.get_attribute("data-step")) - chosen_step), int(t.get_attribute("data-step"))))
        other_step = int(other.get_attribute("data-step"))
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", other)
        other.click()
        long_wait.until(lambda d: "revision 2" in d.find_element(By.ID, "result-caption").text
                        and d.find_element(By.ID, "state").text == "done")
        long_wait.until(lambda d: (image_data(d, "img-result") or before) != before)
        after = image_data(driver, "img-result")
        check(after is not None and after != before, f"picking step {other_step} (was {chosen_step}) changed the edited image")
        first = driver.find_element(By.CSS_SELECTOR, ".pair-result")
        now_chosen = [int(t.get_attribute("data-step")) for t in first.find_elements(By.CSS_SELECTOR, ".cand.chosen")]
        check(now_chosen == [other_step], f"step {other_step} is now marked chosen ({now_chosen})")

        # before / after
        driver.find_element(By.ID, "toggle").click()
        wait.until(lambda d: "before" in d.find_element(By.ID, "result-caption").text)
        wait.until(lambda d: image_data(d, "img-result") is not None)
        check(image_data(driver, "img-result") == image_data(driver, "img-input"), "Show before shows the input")
        driver.find_element(By.ID, "toggle").click()
        wait.until(lambda d: "edited" in d.find_element(By.ID, "result-caption").text)

        # download report.json
        link = driver.find_element(By.CSS_SELECTOR, "#downloads a[download='report.json']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
        link.click()
        path = os.path.join(downloads, "report.json")
        deadline = time.time() + 30
        while time.time() < deadline and not (os.path.exists(path) and os.path.getsize(path) > 0):
            time.sleep(0.2)
        report = None
        if check(os.path.exists(path), "report.json downloaded"):
            with open(path) as f:
                report = json.load(f)
            check(report.get("revision") == 2 and report["pairs"][0]["chosen_step"] == other_step
                  and report["pairs"][0]["step_from"] == "picked" and report["picks"][0]["step"] == other_step,
                  "report.json records the pick (revision 2, pair 1 step %d, picked)" % other_step)
            check(report["pairs"][1]["mask"] == "auto" and "mask_inferred" in report["pairs"][1],
                  "report.json: pair 2's mask was inferred")
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(os.path.join(shots, "3_picked.png"))
        # the whole page (docs/serve.png is one of these)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 40, 4000))
        driver.save_screenshot(os.path.join(shots, "4_page.png"))
        # a JPEG with an EXIF rotation: shown as oir reads it (the stored pixels, not turned)
        driver.set_window_size(1400, 1300)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.find_element(By.ID, "file").send_keys(os.path.join(REPO, "tests", "ui", "rotated_exif6.jpg"))
        wait.until(lambda d: "rotated_exif6.jpg" in d.find_element(By.ID, "geometry").text)
        geo = driver.find_element(By.ID, "geometry").text
        red = driver.execute_script(
            "const d = document.getElementById('photo').getContext('2d').getImageData(10, 12, 1, 1).data;"
            "return d[0] > 150 && d[1] < 100;")
        check("48x32, worked on at 64x48" in geo and "EXIF rotation (6)" in geo and red,
              f"an EXIF-rotated JPEG is shown unrotated, as oir reads it ({geo})")
        errors = console_errors(driver)
        for e in errors:
            print("    console:", e.get("message"))
        check(not errors, f"no console errors ({len(errors)})")
    except TimeoutException as e:
        check(False, f"timed out waiting: {e.msg or ''}")
        if driver:
            driver.save_screenshot(os.path.join(shots, "timeout.png"))
            for e in driver.get_log("browser"):
                print("    console:", e.get("level"), e.get("message"))
    finally:
        if driver:
            driver.quit()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = -1
        check(rc == 0, f"oir serve stopped cleanly on SIGTERM (exit {rc})")
        shutil.rmtree(downloads, ignore_errors=True)
    print(f"test-ui: {time.time() - t_start:.1f} s; screenshots in {shots}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
