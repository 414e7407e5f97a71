"""The portal in a real browser: Debian's Chromium driven by Playwright,
against a live server with the real demos and their sample data. Screenshots
go to artifacts/screenshots/."""

import shutil
import zipfile
from pathlib import Path

import httpx
import pytest

from vectorfair.testing import write_config

from .live import free_port, start_app, wait_for

pytestmark = pytest.mark.slow
DEMOS = "qa_chatbot,image_search,molecule_search"
SHOTS = Path(__file__).parents[1] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    config = write_config(root, "[demos.molecule_search]\nsample_limit = 1500\n", plugins=DEMOS)
    app, url = start_app(config, free_port(), root / "app.log", env={"PYTHONPATH": ""})
    try:
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 60, what="ready")
        wait_for(lambda: len(httpx.get(f"{url}/api/jobs").json()) == 3, 60, what="sample jobs")
        wait_for(
            lambda: all(j["state"] == "succeeded" for j in httpx.get(f"{url}/api/jobs").json()),
            600,
            interval=1,
            what="sample data loaded",
        )
        yield url
    finally:
        app.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (make test installs it with apt-get)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def test_home_lists_every_demo(page, base):
    page.goto(base + "/")
    for title in ("QA chatbot", "Reverse image search", "Molecular similarity"):
        assert page.get_by_role("heading", name=title).is_visible()
    page.wait_for_function("[...document.querySelectorAll('[data-count]')].every(e => /^[0-9]+ /.test(e.textContent))")
    # Items, in the demo's own words, with the rows they are stored as beside them.
    assert page.locator(".card[data-demo=qa_chatbot] [data-count]").inner_text() == "306 questions · 612 rows"
    assert page.locator(".card[data-demo=molecule_search] [data-count]").inner_text().endswith(" molecules")
    page.screenshot(path=SHOTS / "home.png", full_page=True)


def test_qa_page_answers_a_question(page, base):
    page.goto(base + "/demos/qa_chatbot")
    page.get_by_label("Query").fill("is docker required to try it out")
    page.keyboard.press("Enter")
    page.wait_for_selector(".hit")
    assert "Milvus Lite" in page.locator("#summary .answer").inner_text()
    assert page.locator(".hit").count() == 10
    page.screenshot(path=SHOTS / "qa_chatbot.png", full_page=True)


def test_image_page_searches_by_photo(page, base):
    import skimage

    page.goto(base + "/demos/image_search")
    page.set_input_files("#file", str(Path(skimage.__file__).parent / "data" / "coffee.png"))
    page.wait_for_selector(".hit img")
    first = page.locator(".hit").first
    assert first.locator("h3").inner_text() == "coffee.png"
    assert "espresso" in first.locator("img").get_attribute("alt")
    assert page.evaluate("document.querySelector('.hit img').naturalWidth") > 0
    page.screenshot(path=SHOTS / "image_search.png", full_page=True)


def test_molecule_page_previews_and_searches(page, base):
    page.goto(base + "/demos/molecule_search")
    page.get_by_label("Query").fill("CC(=O)Nc1ccc(O)cc1")
    # A function, not an expression: Playwright evaluates expressions with eval(), which the CSP forbids.
    page.wait_for_function(
        "() => document.querySelector('#preview') && !document.querySelector('#preview').hidden"
        " && document.querySelector('#preview').naturalWidth > 0"
    )
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector(".hit img.structure")
    assert page.locator(".hit").count() == 10
    assert float(page.locator(".hit .score").first.inner_text().split()[1]) <= 1.0
    page.screenshot(path=SHOTS / "molecule_search.png", full_page=True)
    page.get_by_label("Query").fill("C1CC")
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#error:not([hidden])")
    assert "unclosed ring" in page.locator("#error").inner_text()


def test_bulk_upload_progress_reaches_the_end(page, base, tmp_path):
    rows = "question,answer\n" + "".join(f"Browser test question {i}?,Answer number {i}.\n" for i in range(40))
    archive = tmp_path / "faq.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("faq.csv", rows + ",missing question\n")
    page.goto(base + "/demos/qa_chatbot")
    page.get_by_text("Add your own items").click()
    page.set_input_files("#archive", str(archive))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector("#progress[data-finished=true]", timeout=120_000)
    assert (
        page.evaluate("document.querySelector('#progress').value")
        == page.evaluate("document.querySelector('#progress').max")
        == 41
    )
    assert "succeeded: 40 done, 1 failed" in page.locator("#job-status").inner_text()
    assert "missing question" in page.locator("#job-errors").inner_text()
    page.screenshot(path=SHOTS / "bulk_upload.png", full_page=True)


def test_bad_upload_shows_an_error_in_words(page, base, tmp_path):
    bad = tmp_path / "notes.zip"
    bad.write_bytes(b"this is not an archive")
    page.goto(base + "/demos/image_search")
    page.get_by_text("Add your own items").click()
    page.set_input_files("#archive", str(bad))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector("#error:not([hidden])")
    text = page.locator("#error").inner_text()
    assert "not a zip or tar" in text and "Traceback" not in text


def test_phone_layout(browser, base):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(base + "/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=SHOTS / "home_phone.png", full_page=True)
    context.close()


def test_a_plugin_draws_its_own_results(browser, tmp_path):
    """The fake plugin's result_script (served by extra_static) renders its hits."""
    from .live import FIXTURES

    config = write_config(tmp_path, "[demos.fake]\nsample_size = 8\n", plugins="fake")
    app, url = start_app(config, free_port(), tmp_path / "app.log", env={"PYTHONPATH": str(FIXTURES)})
    try:
        wait_for(lambda: httpx.get(f"{url}/api/demos").json()[0]["count"] == 8, 60, what="fake sample")
        page = browser.new_page()
        page.goto(url + "/demos/fake?q=apple")
        page.wait_for_selector(".hit.fake-result .fake-marker")
        assert page.locator(".fake-marker").first.inner_text() == "fake renderer: sample"
        page.close()
    finally:
        app.kill()


def test_portal_visitors_see_only_their_own_uploads_in_the_browser(browser, tmp_path):
    """Two browsers on a portal-mode server: what one uploads through the page,
    the other never finds. The pages run under the default
    Content-Security-Policy (no inline scripts) without a violation."""
    from .live import FIXTURES

    config = write_config(tmp_path, "[demos.fake]\nsample_size = 8\n[visitors]\nseparate = true\n", plugins="fake")
    app, url = start_app(config, free_port(), tmp_path / "app.log", env={"PYTHONPATH": str(FIXTURES)})
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(f"notes/kestrel{i}.txt", f"kestrel falcon note {i}")
    violations = []
    try:
        wait_for(lambda: httpx.get(f"{url}/api/demos").json()[0]["count"] == 8, 60, what="fake sample")
        pages = {}
        for name in ("a", "b"):
            context = browser.new_context()
            pages[name] = context.new_page()
            pages[name].on(
                "console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None
            )
        a, b = pages["a"], pages["b"]
        a.goto(url + "/demos/fake")
        a.get_by_text("Add your own items").click()
        a.set_input_files("#archive", str(archive))
        a.get_by_role("button", name="Upload", exact=True).click()
        a.wait_for_selector("#progress[data-finished=true]", timeout=60_000)
        assert "succeeded: 3 done" in a.locator("#job-status").inner_text()
        for page in (a, b):
            page.goto(url + "/demos/fake?q=kestrel+falcon")
            page.wait_for_selector(".hit")
        titles_a = a.locator(".hit h3").all_inner_texts()
        titles_b = b.locator(".hit h3").all_inner_texts()
        assert any("kestrel" in t for t in titles_a), titles_a
        assert not any("kestrel" in t for t in titles_b), titles_b
        a.screenshot(path=SHOTS / "portal_visitor.png", full_page=True)
        for page in pages.values():
            page.context.close()
    finally:
        app.kill()
    assert not violations, violations
