"""What a person sees, in headless Chromium (Debian's chromium driven by Playwright): cards, and the web
page."""
import os
import shutil

import pytest
from metaflow.cards import get_cards

from emoji_reco.data import demo
from emoji_reco.data.text import display_emoji
from emoji_reco.flowkit.card_images import CHROMIUM_ARGS, chromium, render
from helpers.flows import task
from helpers.serving import running, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(600)]

if not shutil.which("chromium") and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it",
                allow_module_level=True)


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
        shown = page.eval_on_selector_all(".prediction .emoji", "els => els.map(e => "
                                                                "[e.dataset.label, e.textContent])")
        assert len(shown) == 5 and {label for label, _ in shown} <= set(demo.EMOJIS)
        assert all(text == display_emoji(label) for label, text in shown)
        assert page.text_content("#error") == "" and "model version" in page.text_content("#version")
        # Why: under each emoji, the words that moved it, green when they pushed it up, red when down.
        words = page.eval_on_selector_all(".why .word", """els => els.map(e => [e.textContent, e.title,
            getComputedStyle(e).backgroundColor])""")
        assert words and {w for w, _, _ in words} <= set("so hyped for tonight".split())
        for _, weight, colour in words:
            red, green = (int(c) for c in colour.split("(")[1].split(",")[:2])
            assert (green > red) == (not weight.startswith("-")), (weight, colour)
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert errors == []


def test_the_api_docs_render_from_the_servers_own_files(tiny_bundle):
    from playwright.sync_api import sync_playwright

    with running(model=str(tiny_bundle[1])) as (url, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page()
        asked, errors = [], []
        page.on("request", lambda r: asked.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/docs")
        page.wait_for_selector("text=/invocations")
        assert "emoji-reco" in page.text_content(".info .title")
        browser.close()
    assert errors == [] and asked and all(u.startswith(url + "/") for u in asked), asked


def test_emoji_axis_labels_are_upright_and_every_emoji_is_in_emoji_presentation(champion):
    for step, card_id in (("prepare", "data"), ("evaluate", "evaluation")):
        html = get_cards(task(champion, step), id=card_id)[0].get()
        labels = [label for chart in render(html)["charts"] for label in chart["axis_labels"]]
        emoji_labels = [label for label in labels if label["text"].rstrip("\ufe0f") in demo.EMOJIS]
        assert len(emoji_labels) >= 10 and not any(label["rotated"] for label in emoji_labels), (step, labels)
        assert "❤\ufe0f" in {label["text"] for label in emoji_labels}  # never the bare text-style heart
    assert "❤" in demo.EMOJIS  # the label itself keeps one spelling


def colourful_pixels(png: bytes) -> int:
    """Pixels whose channels differ a lot: colour, not black, white or grey."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if max(r, g, b) - min(r, g, b) > 80)


def test_the_web_page_shows_emojis_in_colour(tiny_bundle):
    from playwright.sync_api import sync_playwright

    _, folder = tiny_bundle
    answer = {"version": "v", "predictions": [[{"emoji": "❤", "probability": 0.5},
                                               {"emoji": "😂", "probability": 0.3}]]}
    with running(model=str(folder)) as (url, _), sync_playwright() as pw:
        wait_ready(url)
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url + "/")  # the page as served; its answer fixed so the heart is sure to show
        page.route("**/invocations*", lambda route: route.fulfill(json=answer))
        page.fill("#text", "love you")
        page.click("#go")
        page.wait_for_selector(".prediction")
        hearts = page.query_selector_all(".prediction .emoji")
        assert [h.text_content() for h in hearts] == ["❤\ufe0f", "😂"]
        for element in hearts:
            assert colourful_pixels(element.screenshot()) > 50
        browser.close()
