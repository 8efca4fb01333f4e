"""The explore page in a real browser: Playwright driving Debian's Chromium, headless. Every
number the page shows is computed by its JavaScript; these tests read them from the page (its
text and data attributes) and compare them with NumPy's.

Skipped without playwright or chromium, unless NPBIGRAM_REQUIRE_BROWSER=1 (as .ci/run sets).
"""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from npbigram import load_checkpoint, ops, train_val_split
from npbigram.cli import main
from npbigram.data.corpus import pair_counts
from npbigram.tools.explain import token_labels
from npbigram.tools.optimum import count_probs

from helpers import TEXT, save_trainer, skip_or_fail, trained_trainer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]
TRAIN = ["--max-iters", "60", "--eval-interval", "20", "--eval-iters", "4", "--sample-tokens",
         "0", "--backend", "numpy", "--snapshots", "3"]


@pytest.fixture(scope="module")
def browser():
    """Chromium, headless (one per module: Playwright's loop ends with it)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed", "NPBIGRAM_REQUIRE_BROWSER")
    executable = shutil.which("chromium")
    if executable is None:
        skip_or_fail("chromium is not installed", "NPBIGRAM_REQUIRE_BROWSER")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A page opened from disk, with every console error, page error and request it made."""

    def __init__(self, browser, path):
        self.page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']")

    def attribute(self, selector, name):
        return self.page.get_attribute(selector, f"data-{name}")

    def hover_cell(self, canvas, i, j):
        point = self.page.evaluate(f"window.npbigram.cellCenter('{canvas}', {i}, {j})")
        self.page.mouse.move(point["x"], point["y"])
        return point


def explore_page(folder, text, *train_flags):
    """(page path, checkpoint) of a model trained on `text` in `folder`."""
    (folder / "text.txt").write_text(text, encoding="utf-8")
    assert main(["train", "--data", str(folder / "text.txt"), "--out", str(folder / "ckpt.npz"),
                 *TRAIN, *train_flags]) == 0
    assert main(["explore", "--checkpoint", str(folder / "ckpt.npz"),
                 "--out", str(folder / "page.html")]) == 0
    return folder / "page.html", load_checkpoint(folder / "ckpt.npz")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return explore_page(tmp_path_factory.mktemp("small"), TEXT)


@pytest.fixture
def page(browser, small):
    opened = Page(browser, small[0])
    yield opened
    opened.page.close()


def page_batch(page):
    """xb, yb (B,T) as the page's batch grid shows them."""
    cells = page.page.eval_on_selector_all(
        "#batch-grid td", "tds => tds.map(td => [+td.dataset.b, +td.dataset.t, +td.dataset.x])")
    xb = np.zeros((max(c[0] for c in cells) + 1, max(c[1] for c in cells) + 1), np.int64)
    for b, t, x in cells:
        xb[b, t] = x
    data = json.loads(page.page.text_content("#npbigram-data"))
    return xb, np.array(data["batch"]["yb"])


def test_the_page_loads_without_an_error_or_a_request(page):
    assert page.errors == []
    assert page.requests == [page.url]  # the page itself, and nothing else
    for _ in range(5):
        page.page.click("#gen-step")
    page.page.click("#batch-grid td[data-b='0'][data-t='0']")
    assert page.errors == [] and page.requests == [page.url]


def test_hovering_a_cell_shows_numpys_probability(page, small):
    checkpoint = small[1]
    probs = ops.softmax(checkpoint.model.weight.astype(np.float64))  # (V,V)
    labels = token_labels(checkpoint.tokenizer)
    i = checkpoint.tokenizer.encode("e")[0]
    j = int(np.argmax(probs[i]))
    page.hover_cell("heat-model", i, j)
    assert (int(page.attribute("#cell-readout", "i")), int(page.attribute("#cell-readout", "j"))) \
        == (i, j)
    assert float(page.attribute("#cell-readout", "p")) == pytest.approx(probs[i, j], abs=1e-6)
    text = page.page.text_content("#cell-readout")
    assert text.startswith(f"after '{labels[i]}', '{labels[j]}': p = {probs[i, j]:.4f} (counted ")
    train, _ = train_val_split(checkpoint.tokenizer.encode(TEXT))
    counted = count_probs(pair_counts(train, checkpoint.model.vocab_size))
    assert float(page.attribute("#cell-readout", "counted")) == pytest.approx(counted[i, j],
                                                                              abs=1e-12)


def test_clicking_a_row_shows_its_part_of_the_train_loss(page, small):
    checkpoint = small[1]
    i = checkpoint.tokenizer.encode("p")[0]
    page.hover_cell("heat-model", i, 3)
    page.page.mouse.down()
    page.page.mouse.up()
    train, _ = train_val_split(checkpoint.tokenizer.encode(TEXT))
    counts = pair_counts(train, checkpoint.model.vocab_size)
    logp = ops.log_softmax(checkpoint.model.weight.astype(np.float64))
    part = -(counts[i] * logp[i]).sum() / counts.sum()
    assert float(page.attribute("#row-loss", "loss")) == pytest.approx(part, abs=1e-9)
    assert page.page.locator("#row-top li").count() == 10


def test_clicking_a_position_shows_numpys_loss_term_and_gradient_row(page, small):
    model = small[1].model
    xb, yb = page_batch(page)
    ids, counts = np.unique(xb, return_counts=True)
    shared = ids[np.argmax(counts)]  # a row that several positions read, if any does
    b, t = map(int, np.argwhere(xb == shared)[0])
    page.page.click(f"#batch-grid td[data-b='{b}'][data-t='{t}']")

    logits = model.weight.astype(np.float64)[xb.reshape(-1)]  # (N,V)
    loss, probs = ops.cross_entropy_forward(logits, yb.reshape(-1))
    dlogits = ops.cross_entropy_backward(probs, yb.reshape(-1))  # (N,V)
    n = b * xb.shape[1] + t
    assert float(page.attribute("#position-panel", "loss")) == pytest.approx(
        -np.log(probs[n, yb[b, t]]), abs=1e-9)
    np.testing.assert_allclose(json.loads(page.attribute("#position-panel", "grad")), dlogits[n],
                               atol=1e-12)
    dweight = ops.embedding_backward(dlogits, xb, model.vocab_size)  # the scatter-add
    np.testing.assert_allclose(json.loads(page.attribute("#position-panel", "row-grad")),
                               dweight[shared], atol=1e-12)
    assert int(page.attribute("#position-panel", "readers")) == counts.max()
    assert page.page.is_visible("#row-grad") == (counts.max() > 1)


def test_the_pages_batch_loss_is_the_models(page, small):
    xb, yb = page_batch(page)
    _, loss = small[1].model(xb, yb)
    assert float(page.attribute("#batch-loss", "loss")) == pytest.approx(loss, abs=1e-5)


def test_at_temperature_zero_the_page_generates_the_argmax_chain(page, small):
    model, tokenizer = small[1].model, small[1].tokenizer
    page.page.fill("#temperature", "0")
    page.page.click("#gen-reset")
    for _ in range(30):
        page.page.click("#gen-step")
    chain = [tokenizer.start_id]
    for _ in range(30):
        chain.append(int(np.argmax(model.weight[chain[-1]])))
    assert json.loads(page.attribute("#gen-text", "ids")) == chain
    assert page.attribute("#gen-text", "text") == tokenizer.decode(chain)


def test_the_seed_and_top_k_set_the_draws(page, small):
    def draws(seed, top_k):
        page.page.fill("#top-k", str(top_k))
        page.page.fill("#seed", str(seed))
        page.page.click("#gen-reset")
        for _ in range(12):
            page.page.click("#gen-step")
        return json.loads(page.attribute("#gen-text", "ids"))

    assert draws(5, 0) == draws(5, 0) != draws(6, 0)
    weight, ids = small[1].model.weight, draws(7, 1)  # the most likely token only
    assert all(int(np.argmax(weight[a])) == b for a, b in zip(ids, ids[1:]))


def test_the_slider_shows_the_table_at_each_snapshot(page, small):
    steps = [step for step, _ in small[1].snapshots]
    assert steps == [0, 40, 60]  # 3 of the evaluations at 0, 20, 40, 60, spread over the run
    assert int(page.attribute("#snapshot-readout", "step")) == 60
    for k, step in enumerate(steps):
        page.page.eval_on_selector("#snapshot-slider", "(slider, k) => { slider.value = k; "
                                   "slider.dispatchEvent(new Event('input')); }", k)
        assert int(page.attribute("#snapshot-readout", "step")) == step


def test_a_page_without_data_or_history_works(browser, tmp_path):
    save_trainer(tmp_path / "ckpt.npz", trained_trainer("numpy"))  # no data record, no history
    assert main(["explore", "--checkpoint", "ckpt.npz", "--out", "page.html"]) == 0
    opened = Page(browser, tmp_path / "page.html")
    assert opened.errors == [] and opened.requests == [opened.url]
    assert not opened.page.is_visible("#heat-counted")
    assert "no evaluations" in opened.page.text_content("#training-about")
    opened.hover_cell("heat-model", 2, 3)
    opened.page.mouse.down()
    opened.page.mouse.up()
    model = load_checkpoint(tmp_path / "ckpt.npz").model
    probs = ops.softmax(model.weight.astype(np.float64))  # (V,V)
    entropy = -(probs[2] * np.log(probs[2])).sum()
    assert opened.page.text_content("#row-loss").startswith(f"entropy of the row: {entropy:.4f}")
    assert opened.page.text_content("#cell-readout").endswith(f"p = {probs[2, 3]:.4f}")
    xb, yb = page_batch(opened)  # text the model generated
    assert float(opened.attribute("#batch-loss", "loss")) == pytest.approx(model(xb, yb)[1],
                                                                           abs=1e-5)
    assert opened.errors == []


def test_a_chinese_checkpoint_renders_its_labels(browser, tmp_path):
    rng = np.random.default_rng(0)
    characters = [chr(0x4E00 + k) for k in rng.choice(20000, 300, replace=False)] + list("，。\n")
    text = "".join(rng.choice(characters, 6000))
    path, checkpoint = explore_page(tmp_path, text)
    opened = Page(browser, path)
    assert opened.errors == []
    labels = token_labels(checkpoint.tokenizer)
    assert opened.page.evaluate("window.npbigram.labels") == labels
    i, j = checkpoint.tokenizer.encode(characters[0] + characters[1])
    opened.hover_cell("heat-model", i, j)
    assert opened.page.text_content("#cell-readout").startswith(
        f"after '{characters[0]}', '{characters[1]}': p = ")
    grid = opened.page.text_content("#batch-grid")
    xb, _ = page_batch(opened)
    assert all(labels[x] in grid for x in xb.reshape(-1))


def distinct_colours(png):
    """How many colours a PNG image (bytes) holds."""
    image = pytest.importorskip("PIL.Image")
    pixels = np.asarray(image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def test_a_screenshot_is_not_blank(page):
    assert distinct_colours(page.page.locator("#heat-model").screenshot()) > 20
    assert distinct_colours(page.page.screenshot()) > 20


def test_the_seed_jobs_page_explains_the_lectures_batch(browser, tmp_path, tinyshakespeare):
    assert main(["train", "--data", str(tinyshakespeare), "--rng", "torch", "--snapshots", "11",
                 "--sample-tokens", "0"]) == 0
    assert main(["explore", "--checkpoint", "ckpt.npz", "--out", "page.html"]) == 0
    opened, checkpoint = Page(browser, tmp_path / "page.html"), load_checkpoint("ckpt.npz")
    assert opened.errors == [] and opened.requests == [opened.url]
    xb, yb = page_batch(opened)
    assert xb[0].tolist() == [24, 43, 58, 5, 57, 1, 46, 43]  # "Let's he": the lecture's batch
    assert float(opened.attribute("#batch-loss", "loss")) == pytest.approx(
        checkpoint.model(xb, yb)[1], abs=1e-5)
    assert opened.page.eval_on_selector("#snapshot-slider", "slider => +slider.max") == 10


def test_the_readme_screenshot_is_made_by_a_script(browser, tmp_path, tinyshakespeare):
    subprocess.run([sys.executable, ROOT / "docs" / "screenshots.py", "--data", tinyshakespeare,
                    "--out", tmp_path / "explore.png"], check=True, cwd=tmp_path)
    assert distinct_colours((tmp_path / "explore.png").read_bytes()) > 20
