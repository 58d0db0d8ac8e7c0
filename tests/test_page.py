"""The drawing page itself in a real browser: Debian's headless Chromium driven by
Playwright, on a small model trained on real MNIST (or, with --drawing-model, on the
pipeline's own). Its server alone: tests/test_serve.py."""

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from rowlstm.split_files import load_split
from tests.helpers import (
    BROKEN_PNG,
    HAS_REAL_MNIST,
    LSTM_SIGNALS,
    NO_REAL_MNIST,
    ROOT,
    SEVEN,
    answer_of,
    pixels_of,
    png,
    real_mnist,
    real_mnist_model,
    served,
)
from tools.predict import answers_of

NO_ANSWER = "\u2013"  # the page's answer before it has one
DESKTOP = {"width": 1366, "height": 768}  # the most common laptop screen: the fold
PHONE = {"width": 390, "height": 844}
DASH = [[(130, 140), (136, 140)]]  # a 6-pixel stroke with the 20-pixel pen

# Debian's package, Ubuntu's, or Google's (GitHub's runners have it).
BROWSERS = ["chromium", "chromium-browser", "google-chrome"]
CHROMIUM = next(filter(None, map(shutil.which, BROWSERS)), None)
NO_BROWSER = "no Chromium to drive: apt-get install chromium (.ci/run does)"


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict:
    """The model the page serves, MNIST test digits, and the folder it is served from (its
    examples come from the data there): the pipeline's model and folder given
    --drawing-model, else a small model trained here on real MNIST, and the folder that
    holds its prepared data (no evaluate's predictions: no examples read wrong)."""
    if not HAS_REAL_MNIST:
        pytest.skip(NO_REAL_MNIST)
    root = tmp_path_factory.mktemp("mnist")
    given = request.config.getoption("--drawing-model")
    model = given or real_mnist_model(root)
    x, y = load_split(real_mnist(root) / "test")
    return {"model": model, "x": x, "y": y, "where": ROOT if given else root}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail(f"{NO_BROWSER}: CI must run the browser test, never skip it")
        pytest.skip(NO_BROWSER)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(mnist: dict, browser: object) -> Iterator[str]:
    with served(mnist["model"], mnist["where"]) as url:
        yield url


@pytest.fixture
def page(browser: object, site: str) -> Iterator[object]:
    """The page, opened; afterwards, no script error and no request anywhere but the server."""
    page = browser.new_page(viewport=DESKTOP, reduced_motion="reduce")
    errors, elsewhere = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda r: r.url.startswith(site) or elsewhere.append(r.url))
    page.goto(site)
    yield page
    page.close()
    assert (errors, elsewhere) == ([], [])


def draw(page: object, strokes: list[list[tuple[int, int]]]) -> None:
    """Each stroke with the mouse, on the pad's 280x280 pixels."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()


def drop(page: object, name: str, content: bytes) -> None:
    """A file dropped on the pad, as a file manager drops one."""
    page.evaluate(
        """([name, encoded]) => {
            const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
            const files = new DataTransfer();
            files.items.add(new File([bytes], name, { type: "image/png" }));
            const event = new DragEvent("drop", { dataTransfer: files, bubbles: true });
            document.getElementById("pad").dispatchEvent(event);
        }""",
        [name, base64.b64encode(content).decode()],
    )


def read_by_drop(page: object, name: str, pixels: np.ndarray) -> dict:
    """Drop these pixels as a PNG; the server's answer, once the page shows it."""
    with page.expect_response("**/read") as response:
        drop(page, name, png(pixels))
    page.wait_for_selector("body[data-state=read]")
    return response.value.json()


def mnist_digit(mnist: dict, label: int, nth: int = 0) -> np.ndarray:
    """A real MNIST test digit, uint8, as prepare's split holds it."""
    index = int(np.flatnonzero(mnist["y"] == label)[nth])
    return np.rint(mnist["x"][index] * 255).astype(np.uint8)


def seen(page: object) -> np.ndarray:
    """The 28x28 image the page shows as the model's input."""
    values = page.evaluate(
        """() => Array.from(document.getElementById("seen").getContext("2d")
               .getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0))"""
    )
    return np.array(values, np.uint8).reshape(28, 28)


def record(screenshot: Path, model: Path) -> None:
    """Into the manifest beside the screenshot (drawing-page.json), as tools/figures.py's
    records each picture: the model it shows (its DVC hash) and the picture's own hash
    (tests/test_docs.py checks both)."""
    manifest = screenshot.with_name("drawing-page.json")
    entries = json.loads(manifest.read_text()) if manifest.exists() else {}
    entries[screenshot.name] = {
        "source": "models/model.keras",
        "source_md5": hashlib.md5(model.read_bytes(), usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(screenshot.read_bytes()).hexdigest(),
    }
    manifest.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


def below_the_fold(page: object, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    return box["y"] + box["height"] - DESKTOP["height"]


def test_a_seven_drawn_with_the_mouse_is_read_as_a_seven(
    page: object, mnist: dict, request: pytest.FixtureRequest
) -> None:
    draw(page, SEVEN)
    page.wait_for_selector("body[data-state=read]")
    assert page.locator("#answer").text_content() == "7"
    rows = page.locator("#rows tbody tr")
    assert rows.count() == 28
    assert rows.nth(27).get_attribute("data-guess") == "7"
    assert seen(page).max() == 255 and seen(page)[:, :4].max() == 0  # the prepared digit
    maps = page.locator("#signals canvas")
    assert [maps.nth(i).get_attribute("data-signal") for i in range(maps.count())] == LSTM_SIGNALS
    assert page.locator("#settled").text_content().startswith("decided at row ")
    for selector in ["#pad", "#answer", "#bars", "#seen-box"]:  # the fold of a laptop
        assert below_the_fold(page, selector) <= 0, selector
    screenshot = request.config.getoption("--screenshot")
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
        record(screenshot, Path(mnist["model"]))
    page.keyboard.press("Control+z")  # undo the one stroke: nothing left to read
    assert page.locator("#answer").text_content() == NO_ANSWER
    assert page.locator("#seen-panel").is_hidden() and page.locator("#reading").is_hidden()


def test_an_answer_comes_while_the_stroke_is_drawn_and_undo_takes_a_stroke_back(
    page: object,
) -> None:
    box = page.locator("#pad").bounding_box()
    (x, y), *rest = SEVEN[0]
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.down()
    for x, y in rest:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
    page.wait_for_selector("body[data-state=read]")  # the button is still down
    page.mouse.up()
    page.wait_for_selector("body[data-state=read]")
    one_stroke = seen(page)
    draw(page, [[(40, 150), (240, 150)]])
    page.wait_for_selector("body[data-state=read]")
    assert not np.array_equal(seen(page), one_stroke)
    page.click("#undo")
    page.wait_for_selector("body[data-state=read]")
    assert np.array_equal(seen(page), one_stroke)


def test_the_replay_shows_each_row_as_the_server_read_it(page: object, mnist: dict) -> None:
    answer = read_by_drop(page, "three.png", mnist_digit(mnist, 3))
    slider = page.locator("#row")
    slider.focus()
    page.keyboard.press("Home")
    for row in range(1, 29):
        shown = page.locator("#bars li")
        assert [float(shown.nth(d).get_attribute("data-p")) for d in range(10)] == answer["rows"][
            row - 1
        ]
        assert page.locator("#row-label").text_content() == f"row {row}"
        page.keyboard.press("ArrowRight")
    assert page.locator("#answer").text_content() == str(answer["digit"])
    page.click("#play")  # from row 1 to row 28, then it stops
    expect(page.locator("#play")).to_have_text("Play")
    assert page.locator("#row-label").text_content() == "row 28"


def test_a_row_blanked_reads_as_predict_reads_the_image_without_it(
    page: object, mnist: dict, tmp_path: Path
) -> None:
    answer = read_by_drop(page, "eight.png", mnist_digit(mnist, 8))
    drops = np.array(answer["probability"]) - answer["influence"]
    row = int(drops.argmax())  # the row that holds the answer up most
    box = page.locator("#seen").bounding_box()
    with page.expect_response("**/read") as response:
        page.mouse.click(box["x"] + 140, box["y"] + (row + 0.5) * box["height"] / 28)
    page.wait_for_selector("body[data-state=read]")
    blanked = response.value.json()
    assert blanked["blanked"] == [row]
    without = pixels_of(answer["image"]).copy()
    without[row] = 0
    assert np.array_equal(pixels_of(blanked["image"]), without) and np.array_equal(
        seen(page), without
    )
    image = tmp_path / "without.png"
    image.write_bytes(png(without))
    [(_, final)] = answers_of(Path(mnist["model"]), [image])
    assert np.allclose(blanked["probabilities"], final, atol=1e-4)
    assert page.locator("#answer").text_content() == str(int(np.argmax(final)))
    assert abs(blanked["probabilities"][answer["digit"]] - answer["influence"][row]) <= 1e-4
    page.click("#restore")
    page.wait_for_selector("body[data-state=read]")
    assert np.array_equal(seen(page), pixels_of(answer["image"]))


def test_an_unsure_answer_says_so_and_names_the_runner_up(
    page: object, mnist: dict, site: str
) -> None:
    four, nine = mnist_digit(mnist, 4).astype(float), mnist_digit(mnist, 9).astype(float)
    blends = [np.rint((1 - a) * four + a * nine).astype(np.uint8) for a in np.linspace(0, 1, 21)]
    unsure = next(b for b in blends if not answer_of(site.rstrip("/"), png(b))["sure"])
    answer = read_by_drop(page, "blend.png", unsure)
    notes = page.locator("#notes").text_content()
    assert f"not sure: it may be a{'n' * (answer['runner_up'] == 8)} {answer['runner_up']}" in notes
    assert page.locator("#runner-up").text_content() == (
        f"runner-up {answer['runner_up']}, probability {answer['runner_up_probability']:.4f}"
    )
    assert page.locator("#announce").text_content().startswith("Not sure. The answer is ")


def test_a_tap_or_a_dash_is_no_digit_and_a_broken_file_is_one_line(page: object) -> None:
    box = page.locator("#pad").bounding_box()
    page.mouse.click(box["x"] + 200, box["y"] + 200)  # a tap leaves a dot: no digit either
    page.wait_for_selector("body[data-state=error]")
    dot = page.evaluate(
        """() => Array.from(document.getElementById("pad").getContext("2d")
               .getImageData(200, 200, 1, 1).data)"""
    )
    assert dot[:3] == [0, 0, 0]
    page.keyboard.press("Escape")
    draw(page, DASH)
    page.wait_for_selector("body[data-state=error]")
    assert page.locator("#error").text_content().startswith("no digit found")
    assert page.locator("#answer").text_content() == NO_ANSWER
    drop(page, "broken.png", BROKEN_PNG)
    expect(page.locator("#error")).to_have_text("the image: not a readable PNG or JPEG image")
    assert page.locator("#error").text_content() == "the image: not a readable PNG or JPEG image"
    assert page.locator("#seen-panel").is_hidden()


def test_a_dropped_test_digit_is_read_as_predict_reads_it(
    page: object, mnist: dict, tmp_path: Path
) -> None:
    pixels = mnist_digit(mnist, 4)
    digit = tmp_path / "four.png"
    digit.write_bytes(png(pixels))
    drop(page, "four.png", digit.read_bytes())
    page.wait_for_selector("body[data-state=read]")
    [(_, rows)] = answers_of(Path(mnist["model"]), [digit], every_row=True)
    assert page.locator("#answer").text_content() == str(rows[-1].argmax())
    assert np.array_equal(seen(page), pixels)  # MNIST's own form goes in as it is


def test_the_keyboard_alone_chooses_a_file_and_clears(
    page: object, mnist: dict, tmp_path: Path
) -> None:
    digit = tmp_path / "two.png"
    digit.write_bytes(png(mnist_digit(mnist, 2)))
    # Listening before the first key: Playwright then intercepts the file chooser from the
    # start (set up by expect_file_chooser as the key goes, it can miss the dialog).
    page.on("filechooser", lambda chooser: chooser.set_files(digit))
    for _ in range(10):  # Tab from the top of the page to the button that chooses a file
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "choose":
            break
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-state=read]")
    assert page.locator("#answer").text_content() != NO_ANSWER
    page.keyboard.press("Escape")
    assert page.locator("#answer").text_content() == NO_ANSWER
    assert page.evaluate(
        """() => document.getElementById("pad").getContext("2d")
                .getImageData(0, 0, 280, 280).data.every((v) => v === 255)"""
    )


def test_on_a_phone_nothing_overflows(
    browser: object, site: str, mnist: dict, request: pytest.FixtureRequest
) -> None:
    page = browser.new_page(viewport=PHONE, reduced_motion="reduce", has_touch=True)
    page.goto(site)
    read_by_drop(page, "five.png", mnist_digit(mnist, 5))
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot = request.config.getoption("--screenshot")
    if screenshot:
        phone = screenshot.with_name("drawing-page-phone.png")
        page.screenshot(path=phone, full_page=True)
        record(phone, Path(mnist["model"]))
    page.close()


def test_axe_finds_nothing_serious_before_or_after_an_answer(page: object, mnist: dict) -> None:
    from axe_playwright_python.sync_playwright import Axe

    audits = [Axe().run(page)]
    read_by_drop(page, "six.png", mnist_digit(mnist, 6))
    audits.append(Axe().run(page))
    serious = [
        f"{v['id']}: {v['help']}"
        for audit in audits
        for v in audit.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


def test_an_example_is_read_as_it_is_and_a_busy_server_is_asked_again(
    page: object, mnist: dict
) -> None:
    calls = []

    def busy_once(route: object) -> None:
        calls.append(route.request.url)
        if len(calls) > 1:
            route.continue_()
            return
        busy = json.dumps({"error": "busy: too many requests at once, try again"})
        route.fulfill(status=503, headers={"Retry-After": "1"}, body=busy)

    page.route("**/read", busy_once)
    examples = page.locator("#examples button")
    expect(examples.nth(9)).to_be_attached()  # one of each class, then any read wrong
    wrong = page.locator("#examples button.wrong").count()  # none without evaluate's
    assert examples.count() == 10 + wrong
    assert (wrong == 0) == page.locator("#examples-why").is_visible()
    examples.nth(3).click()
    page.wait_for_selector("body[data-state=read]")
    assert len(calls) == 2  # the 503, then the answer
    assert np.array_equal(seen(page), mnist_digit(mnist, 3))
    assert examples.nth(3).get_attribute("aria-label") == "example: the first 3 of the test split"


def test_a_huge_picture_is_sent_as_shown_and_the_pen_shows_on_a_dark_one(
    page: object, mnist: dict
) -> None:
    from PIL import Image, ImageDraw

    huge = Image.new("L", (5000, 5000), 255)  # over the server's 4096x4096: the page fits it
    corners = [(x * 5000 / 280, y * 5000 / 280) for x, y in SEVEN[0]]
    ImageDraw.Draw(huge).line(corners, fill=0, width=360, joint="curve")
    read_by_drop(page, "huge.png", np.asarray(huge))
    assert page.locator("#answer").text_content() == "7"
    read_by_drop(page, "three.png", mnist_digit(mnist, 3))  # white on black
    draw(page, [[(10, 10), (60, 10)]])  # across the black corner
    pad = page.evaluate(
        """() => Array.from(document.getElementById("pad").getContext("2d")
               .getImageData(35, 10, 1, 1).data)"""
    )
    assert pad[:3] == [255, 255, 255]
