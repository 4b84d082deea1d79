"""Render Metaflow cards in headless Chromium: PNG snapshots, and the console errors a viewer would see."""
import shutil
import tempfile
from pathlib import Path

from emoji_reco.errors import EmojiRecoError

# Quiet, offline Chromium: without these it keeps trying to reach Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
# Metaflow's card template asks Google Fonts for Roboto; offline, the card falls back to another font.
TEMPLATE_FONT_HOST = "fonts.googleapis.com"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not path:
        raise EmojiRecoError("No Chromium found: install it (Debian/Ubuntu: apt-get install chromium).")
    return path


def render(html: str, png: Path | None = None, width: int = 1100) -> dict:
    """Open a card's HTML in headless Chromium; return its console errors and, for each chart drawn, its size,
    marks and axis labels (with whether each is rotated)."""
    from playwright.sync_api import sync_playwright

    errors = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        page_file = Path(tmp) / "card.html"
        page_file.write_text(html, encoding="utf-8")
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: TEMPLATE_FONT_HOST not in r.url
                    and errors.append(f"failed: {r.url}"))
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_load_state("networkidle")
            charts = page.evaluate(r"""() => Array.from(document.querySelectorAll('.vega-embed'))
                .map(e => { const r = e.getBoundingClientRect(); return {width: r.width, height: r.height,
                            marks: e.querySelectorAll('.mark-rect path, .mark-rect rect, .mark-symbol path,'
                                                      + ' .mark-line path').length,
                            axis_labels: Array.from(e.querySelectorAll('.role-axis-label text')).map(t => ({
                              text: t.textContent,
                              rotated: /rotate\((?!0\))/.test(t.getAttribute('transform') || '')}))
                            }; })""")
            if png:  # our components only: the default template's sections start at "Task Metadata"
                end = page.evaluate("""() => { const h = Array.from(document.querySelectorAll('h1,h2,h3'))
                    .find(e => e.textContent.trim() === 'Task Metadata');
                    return h ? h.getBoundingClientRect().top + window.scrollY : null; }""")
                clip = {"x": 0, "y": 0, "width": width, "height": end} if end else None
                page.screenshot(path=str(png), full_page=True, clip=clip)
        finally:
            browser.close()
    # Chromium also logs every failed request as a console error without its URL; failed requests are
    # already reported above, with their URL, unless they are the template's font.
    errors = [e for e in errors if e != "Failed to load resource: net::ERR_NAME_NOT_RESOLVED"]
    return {"errors": errors, "charts": charts}


def snapshot_run(run_pathspec: str, out_dir: Path) -> list[Path]:
    """A PNG of every card of a run, named `<step>-<card id>.png`."""
    from metaflow import Run
    from metaflow.cards import get_cards
    from metaflow.plugins.cards.exception import CardNotPresentException

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for step in Run(run_pathspec, _namespace_check=False):
        try:
            cards = list(get_cards(step.task))
        except CardNotPresentException:
            continue  # a step without cards
        for card in cards:
            if card.id:
                png = out_dir / f"{step.id}-{card.id}.png"
                render(card.get(), png)
                written.append(png)
    return written
