"""What a person sees, in headless Chromium (Debian's chromium driven by Playwright): cards, and the web page."""
import os
import shutil

import pytest
from metaflow.cards import get_cards

from conftest import task
from emoji_reco import demo_data
from emoji_reco.card_images import CHROMIUM_ARGS, chromium, render
from serving import running, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

if not shutil.which("chromium") and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True)


def test_the_evaluation_card_draws_its_confusion_matrix_without_errors(champion, tmp_path):
    html = get_cards(task(champion, "evaluate"), id="evaluation")[0].get()
    seen = render(html, tmp_path / "evaluation.png")
    assert seen["errors"] == []
    assert len(seen["charts"]) == 1
    matrix = seen["charts"][0]
    assert matrix["width"] > 300 and matrix["height"] > 300
    assert matrix["marks"] >= 1  # the heatmap's cells are drawn
    assert (tmp_path / "evaluation.png").stat().st_size > 20_000


def test_every_card_of_a_run_renders(champion):
    for step in ("prepare", "join_convert", "train", "evaluate", "deploy", "end"):
        for card in get_cards(task(champion, step)):
            assert render(card.get())["errors"] == [], f"{step}/{card.id}"


def test_the_web_page_recommends_emojis_and_shows_errors(tiny_bundle, tmp_path):
    from playwright.sync_api import sync_playwright

    _, folder = tiny_bundle
    with running(model=str(folder)) as (url, _), sync_playwright() as pw:
        wait_ready(url)
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.click("#go")
        assert page.text_content("#error") == "Type a tweet first."
        page.fill("#text", "so hyped for tonight")
        page.click("#go")
        page.wait_for_selector(".prediction")
        shown = page.eval_on_selector_all(".prediction .emoji", "els => els.map(e => e.textContent)")
        assert len(shown) == 5 and set(shown) <= set(demo_data.EMOJIS)
        assert page.text_content("#error") == "" and "model version" in page.text_content("#version")
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert errors == []
