"""The portal in a real browser: Debian's Chromium driven by Playwright,
against a live server with the real demos and their sample data. Screenshots
go to artifacts/screenshots/."""

import os
import re
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

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
    # The code under test: what this run imports (a worktree on PYTHONPATH), not the fixtures.
    app, url = start_app(config, free_port(), root / "app.log", env={"PYTHONPATH": os.environ.get("PYTHONPATH", "")})
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
    # Items, in the demo's own words, with the rows they are stored as beside
    # them (expect polls without evaluating strings, which the page's CSP forbids).
    expect(page.locator(".card[data-demo=qa_chatbot] [data-count]")).to_have_text("306 questions · 612 rows")
    expect(page.locator(".card[data-demo=molecule_search] [data-count]")).to_have_text(re.compile(r"^\d+ molecules$"))
    expect(page.locator(".card[data-demo=image_search] [data-count]")).to_have_text(re.compile(r"^\d+ photos$"))
    page.screenshot(path=SHOTS / "home.png", full_page=True)


def ask_and_wait(page, question, turns):
    """Type `question`, send it with Enter, wait for the reply: turn `turns` of the chat."""
    page.get_by_label("Query").fill(question)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelectorAll('#chat-log .turn.bot:not(.greeting)').length >= {turns}")


def test_qa_page_answers_a_question(page, base):
    page.goto(base + "/demos/qa_chatbot")
    ask_and_wait(page, "is docker required to try it out", 1)
    reply = page.locator("#chat-log .turn.bot.known").last
    assert "Milvus Lite" in reply.locator(".answer").inner_text()
    assert "Do I need Docker to try vectorfair?" in reply.locator(".meta").first.inner_text()
    # The closest entries, one per FAQ pair, behind a disclosure.
    reply.locator("details summary").click()
    assert reply.locator("details li").count() == 10
    assert page.locator(".hit").count() == 0 and page.locator("#summary").is_hidden()
    page.screenshot(path=SHOTS / "qa_chatbot.png", full_page=True)


def test_qa_chat_keeps_the_turns_in_order(page, base):
    page.goto(base + "/demos/qa_chatbot")
    log = page.locator("#chat-log")
    assert log.get_attribute("role") == "log" and log.get_attribute("aria-live") == "polite"
    assert (
        log.get_attribute("aria-label") == "Conversation"
        and page.locator("#results").get_attribute("aria-live") is None
    )
    # The question box comes after the conversation, as in a chat.
    assert page.evaluate(
        "() => !!(document.querySelector('#chat-log').compareDocumentPosition(document.querySelector('#query'))"
        " & Node.DOCUMENT_POSITION_FOLLOWING)"
    )
    ask_and_wait(page, "is docker required to try it out", 1)
    ask_and_wait(page, "which python versions work", 2)
    assert page.locator("#chat-log .turn.you .said").all_inner_texts() == [
        "is docker required to try it out",
        "which python versions work",
    ]
    kinds = page.evaluate(
        "() => [...document.querySelectorAll('#chat-log .turn')].map(t => t.classList.contains('you') ? 'you' : 'bot')"
    )
    assert kinds == ["bot", "you", "bot", "you", "bot"]  # the greeting, then question, reply, question, reply
    replies = page.locator("#chat-log .turn.bot.known .answer").all_inner_texts()
    assert "Milvus Lite" in replies[0] and "3.10" in replies[1]
    assert page.get_by_label("Query").input_value() == ""
    page.screenshot(path=SHOTS / "qa_chat_two_turns.png", full_page=True)


def test_qa_chat_suggests_questions_it_knows_when_it_does_not_know(page, base):
    page.goto(base + "/demos/qa_chatbot")
    ask_and_wait(page, "What is the capital of France?", 1)
    reply = page.locator("#chat-log .turn.bot.unknown").last
    assert "don't know" in reply.locator(".answer").inner_text()
    suggestions = reply.get_by_role("list", name="Closest questions I know").get_by_role("button")
    assert suggestions.count() == 3
    question = suggestions.first.inner_text()
    suggestions.first.click()
    page.wait_for_function("() => document.querySelectorAll('#chat-log .turn.bot:not(.greeting)').length >= 2")
    assert page.locator("#chat-log .turn.you .said").last.inner_text() == question
    answered = page.locator("#chat-log .turn.bot").last
    assert (
        "known" in answered.get_attribute("class") and f"“{question}”" in answered.locator(".meta").first.inner_text()
    )
    assert page.evaluate("() => document.activeElement.id") == "query"


def test_qa_chat_by_keyboard_only(page, base):
    page.goto(base + "/demos/qa_chatbot")
    for _ in range(30):  # Tab through the page to the question box
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "query":
            break
    assert page.evaluate("() => document.activeElement.id") == "query"
    page.keyboard.type("how tall is mount everest")
    page.keyboard.press("Enter")
    page.wait_for_selector("#chat-log .turn.bot.unknown")
    assert page.evaluate("() => document.activeElement.id") == "query"  # focus is back in the box
    # Shift+Tab from the box reaches the last suggestion just above it; Enter asks it.
    page.keyboard.press("Shift+Tab")
    focused = page.evaluate("() => [document.activeElement.className, document.activeElement.textContent]")
    assert focused[0] == "suggestion", focused
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#chat-log .turn.bot:not(.greeting)').length >= 2")
    assert page.locator("#chat-log .turn.you .said").last.inner_text() == focused[1]
    assert page.evaluate("() => document.activeElement.id") == "query"
    # And a question typed after that lands below, in order.
    page.keyboard.type("is docker required to try it out")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#chat-log .turn.bot:not(.greeting)').length >= 3")
    assert page.locator("#chat-log .turn.you .said").all_inner_texts() == [
        "how tall is mount everest",
        focused[1],
        "is docker required to try it out",
    ]
    page.screenshot(path=SHOTS / "qa_chat_keyboard.png", full_page=True)


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
