"""Cards as a person sees them: rendered offline in headless Chromium (Debian's chromium, driven by Playwright)."""
import os
import shutil

import pytest
from metaflow.cards import get_cards

from conftest import task
from emoji_reco.card_images import render

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
