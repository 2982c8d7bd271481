"""Drives the search page in headless Chromium (Selenium WebDriver) as a visitor would.

Usage: search_ui.py URL QUERY FACET_ATTRIBUTE FACET_VALUE

Opens URL, types QUERY, ticks FACET_VALUE under FACET_ATTRIBUTE, goes to page 2, and prints one
JSON object with what the page showed at each step; the Rust test compares it with the API.
Exits non-zero (with the reason on stderr) when a step cannot be done.
"""

import json
import os
import shutil
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 20


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("MIROIR_TEST_CHROMIUM") or shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver_path = os.environ.get("MIROIR_TEST_CHROMEDRIVER") or shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(driver_path), options=options)


# Read in one script run, so a re-render between two reads cannot mix two answers.
SHOWN = """
const text = (selector) => [...document.querySelectorAll(selector)].map((e) => e.textContent);
const current = document.querySelector('#pager button[aria-current=page]');
return {
  total: document.getElementById('total').textContent,
  titles: text('#results .hit h2'),
  marks: text('#results mark'),
  page: current ? current.textContent : null,
  status: document.getElementById('status').textContent,
};
"""


def shown(driver):
    """What the page shows now: the total line, hit titles, marked words, current page."""
    return driver.execute_script(SHOWN)


def main():
    url, query, attribute, value = sys.argv[1:5]
    driver = browser()
    wait = WebDriverWait(driver, TIMEOUT)
    steps = {}
    try:
        driver.get(url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))
        steps["opened"] = shown(driver)

        before = steps["opened"]["total"]
        driver.find_element(By.ID, "q").send_keys(query)
        wait.until(lambda d: shown(d)["total"] != before and d.find_elements(By.CSS_SELECTOR, "#results mark"))
        steps["typed"] = shown(driver)

        before = steps["typed"]["total"]
        box = f'#facets input[data-attribute="{attribute}"][data-value="{value}"]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, box))
        driver.find_element(By.CSS_SELECTOR, box).click()
        wait.until(lambda d: shown(d)["total"] != before)
        steps["filtered"] = shown(driver)

        driver.find_element(By.ID, "next").click()
        wait.until(lambda d: shown(d)["page"] == "2")
        steps["paged"] = shown(driver)
    except Exception as error:  # the step that failed, and what the page showed
        print(f"browser step failed: {error!r}\npage: {json.dumps(shown(driver))}", file=sys.stderr)
        sys.exit(1)
    finally:
        driver.quit()
    print(json.dumps(steps))


if __name__ == "__main__":
    main()
