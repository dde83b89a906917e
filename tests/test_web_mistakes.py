"""The page's "where the model is wrong" part: a run's top losses with their explanations, its reliability
diagram, and a runs table that fits a phone. On a real server, driven by Debian's Chromium."""

from __future__ import annotations

import httpx

from test_web import ARTIFACTS, browser, out, page, server  # noqa: F401 (fixtures)


def test_api_mistakes(server, out):  # noqa: F811
    answer = httpx.get(f"{server}/api/runs/logreg-small/mistakes", timeout=60).json()
    losses = answer["top_losses"]
    assert len(losses) == 10
    assert [x["loss"] for x in losses] == sorted((x["loss"] for x in losses), reverse=True)
    assert all(x["predicted_class"] != x["true_class"] for x in losses[:3])  # the worst are mistakes
    assert all(x["image_png"].startswith("data:image/png") and x["explanation_png"].startswith("data:image/png")
               for x in losses)
    assert answer["explanation_method"] == "gradient × input"
    assert 0 <= answer["calibration"]["ece"] <= 1 and "equal-width bins" in answer["calibration"]["ece_binning"]
    assert answer["reliability_png"].startswith("data:image/png")
    missing = httpx.get(f"{server}/api/runs/no-such-run/mistakes", timeout=10)
    assert missing.status_code == 404 and "no-such-run" in missing.json()["detail"]


def test_top_losses_open_their_explanation(page, server):  # noqa: F811
    page.goto(server)
    page.wait_for_selector("#top-losses button.loss", timeout=60000)
    assert page.locator("#top-losses button.loss").count() == 10
    assert page.locator("#loss-detail").is_hidden()
    page.locator("#top-losses button.loss").first.click()
    assert page.locator("#loss-detail").is_visible()
    assert page.locator("#loss-explanation").get_attribute("src").startswith("data:image/png")
    assert "predicted" in page.locator("#loss-caption").inner_text()
    page.wait_for_function("document.getElementById('reliability-image').naturalWidth > 0")
    assert "calibration error" in page.locator("#calibration-text").inner_text()
    page.screenshot(path=ARTIFACTS / "web-mistakes.png", full_page=True)


def test_runs_table_fits_a_phone(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(server)
    phone.wait_for_selector("#runs-table tbody tr")
    wrap = phone.locator(".table-wrap")
    # nothing hidden in the table's own horizontal scroll: every value and the report link are on screen
    assert phone.evaluate("(() => { const w = document.querySelector('.table-wrap');"
                         " return w.scrollWidth <= w.clientWidth + 1; })()")
    for cell in phone.locator("#runs-table tbody td").all():
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, cell.inner_text()
    labels = phone.evaluate("[...document.querySelectorAll('#runs-table tbody tr:first-child td')]"
                           ".map((td) => getComputedStyle(td, '::before').content)")
    assert '"accuracy "' in labels and '"fit s "' in labels  # the values keep their column's name
    assert "logreg-small" in wrap.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=ARTIFACTS / "web-phone-runs.png", full_page=True)
    context.close()
