"""The README's screenshot of the explore page, docs/explore.png, made from scratch:

    python docs/screenshots.py [--data PATH] [--out docs/explore.png]

trains bigram.py's job on the lecture's generator (npbigram train --rng torch --snapshots 11,
so the page's batch is the lecture's (4,8) batch) in a temporary folder, writes its page with
npbigram explore, opens it in Debian's Chromium (headless, through Playwright), points at a
cell, clicks its row and a position of the batch, draws a few tokens, and saves the page's
first two sections as a PNG.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
VIEWPORT = {"width": 1300, "height": 900}
SHOWN = ("q", "u")  # the cell pointed at, and the row clicked (the first)
POSITION = (0, 2)  # (b, t) of the batch position clicked
DRAWS = 40


def npbigram(*args, cwd):
    subprocess.run([sys.executable, "-m", "npbigram", *map(str, args)], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


def screenshot(page_path, out):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-background-networking"])
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(Path(page_path).resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        labels = page.evaluate("window.npbigram.labels")
        i, j = (labels.index(ch) if ch in labels else 0 for ch in SHOWN)
        point = page.evaluate(f"window.npbigram.cellCenter('heat-model', {i}, {j})")
        page.mouse.click(point["x"], point["y"])
        page.click(f"#batch-grid td[data-b='{POSITION[0]}'][data-t='{POSITION[1]}']")
        for _ in range(DRAWS):
            page.click("#gen-step")
        bottom = page.evaluate("document.getElementById('position-panel').getBoundingClientRect()"
                               ".bottom + window.scrollY")
        page.screenshot(path=str(out), full_page=True,
                        clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom + 12})
        browser.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        help="the text (default: tinyshakespeare, shipped in the package)")
    parser.add_argument("--out", default=DOCS / "explore.png", type=Path)
    args = parser.parse_args(argv)
    data = ["--data", args.data.resolve()] if args.data else []
    with tempfile.TemporaryDirectory() as folder:
        npbigram("train", *data, "--rng", "torch", "--snapshots", 11,
                 "--sample-tokens", 0, cwd=folder)
        npbigram("explore", "--checkpoint", "ckpt.npz", "--out", "explore.html", cwd=folder)
        screenshot(Path(folder) / "explore.html", args.out.resolve())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
