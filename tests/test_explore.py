"""npbigram explore (npbigram/tools/explore.py, npbigram/cli/tools.py) without a browser: what
the page holds, its batch, and the rules of its output file. tests/test_explore_browser.py
drives the page itself."""

import configparser
import json
import re
from pathlib import Path

import numpy as np
import pytest
from npbigram import load_checkpoint, save_checkpoint
from npbigram.cli import main
from npbigram.data.tokenizers import CharTokenizer
from npbigram.tools import explore
from npbigram.tools.lecture import lecture_batch

from helpers import TEXT, trained_trainer

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["--max-iters", "40", "--eval-interval", "20", "--eval-iters", "4", "--sample-tokens",
         "0", "--backend", "numpy"]


@pytest.fixture
def trained(tmp_path):
    """A checkpoint trained on a small text (recorded in it), with 2 snapshots."""
    (tmp_path / "text.txt").write_text(TEXT)
    assert main(["train", "--data", "text.txt", "--out", "ckpt.npz", "--snapshots", "2",
                 *TRAIN]) == 0
    return tmp_path / "ckpt.npz"


def page_json(path):
    """The data a page holds, read back from its script element."""
    html = path.read_text(encoding="utf-8")
    payload = re.search(r'<script type="application/json" id="npbigram-data">(.*?)</script>',
                        html, re.S)[1]
    return json.loads(payload)


def unpacked(packed):
    import base64

    return np.frombuffer(base64.b64decode(packed["base64"]),
                         dtype=np.dtype(packed["dtype"]).newbyteorder("<")).reshape(packed["shape"])


def test_the_page_holds_the_model_counts_batch_history_and_snapshots(trained, capsys):
    assert main(["explore", "--checkpoint", str(trained), "--out", "page.html"]) == 0
    assert "wrote page.html" in capsys.readouterr().out
    data, checkpoint = page_json(trained.parent / "page.html"), load_checkpoint(trained)
    np.testing.assert_array_equal(unpacked(data["weight"]), checkpoint.model.weight)
    tokenizer = checkpoint.tokenizer
    train = tokenizer.encode(TEXT)[:int(0.9 * len(tokenizer.encode(TEXT)))]
    counts = np.zeros((tokenizer.vocab_size,) * 2, dtype=np.int64)
    np.add.at(counts, (train[:-1], train[1:]), 1)
    np.testing.assert_array_equal(unpacked(data["counts"]), counts)  # the recorded data's
    assert data["labels"][tokenizer.encode("\n")[0]] == "\\n"
    assert data["labels"][tokenizer.encode(" ")[0]] == "␣"
    xb, yb = np.array(data["batch"]["xb"]), np.array(data["batch"]["yb"])
    assert xb.shape == yb.shape == (4, 8)
    assert data["batch"]["model_loss"] == pytest.approx(checkpoint.model(xb, yb)[1], abs=1e-7)
    assert [e["step"] for e in data["history"]] == [0, 20, 40]
    assert [s["step"] for s in data["snapshots"]] == [0, 40]
    np.testing.assert_array_equal(unpacked(data["snapshots"][1]["weight"]),
                                  checkpoint.model.weight)
    assert data["floor"] == pytest.approx(explore.floor_loss(counts))


def test_the_page_needs_no_network(trained):
    main(["explore", "--checkpoint", str(trained), "--out", "page.html"])
    html = (trained.parent / "page.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://|\bsrc=|<link|@import|url\(", html)
    assert "default-src 'none'" in html  # the browser refuses any request the page could make


def test_the_seed_jobs_checkpoint_explains_the_lectures_batch(tmp_path, tinyshakespeare):
    assert main(["train", "--data", str(tinyshakespeare), "--max-iters", "10",
                 "--eval-interval", "10", "--eval-iters", "2", "--sample-tokens", "0"]) == 0
    checkpoint = load_checkpoint("ckpt.npz")
    train, _ = explore.train_split(checkpoint.tokenizer, tinyshakespeare)
    batch = explore.page_batch(checkpoint, checkpoint.tokenizer, train)
    assert batch.xb[0].tolist() == [24, 43, 58, 5, 57, 1, 46, 43]  # "Let's he", the lecture's
    np.testing.assert_array_equal(batch.yb, lecture_batch(train)[2])
    assert "torch.manual_seed(1337)" in batch.about


def test_without_data_the_batch_is_text_the_model_generates(trained, capsys):
    (trained.parent / "text.txt").unlink()
    assert main(["explore", "--checkpoint", str(trained), "--out", "page.html"]) == 0
    assert "no longer exists" in capsys.readouterr().out
    data = page_json(trained.parent / "page.html")
    assert data["counts"] is None and data["floor"] is None
    xb, yb = np.array(data["batch"]["xb"]), np.array(data["batch"]["yb"])
    np.testing.assert_array_equal(xb[:, 1:], yb[:, :-1])  # one text per row, shifted by one
    assert "generated" in data["batch"]["about"]


def test_labels_and_text_that_could_end_the_script_element_are_escaped(tmp_path):
    text = "</script><script>alert(1)</script> <!-- x -->\n" * 20
    (tmp_path / "t.txt").write_text(text)
    assert main(["train", "--data", "t.txt", *TRAIN]) == 0
    assert main(["explore", "--checkpoint", "ckpt.npz", "--out", "page.html"]) == 0
    html = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert html.count("</script>") == 2 and "<!--" not in html[html.index("npbigram-data"):]
    texts = page_json(tmp_path / "page.html")["texts"]
    assert "".join(texts) == CharTokenizer.from_text(text).chars


@pytest.mark.parametrize("name, expected", [
    ("page.png", "should end in .html"),
    ("notes.html", "exists and is not a page written by npbigram explore"),
    ("folder", "should end in .html"),
])
def test_the_output_is_an_html_file_never_one_the_user_made(trained, capsys, name, expected):
    (trained.parent / "notes.html").write_text("my notes")
    (trained.parent / "folder").mkdir()
    assert main(["explore", "--checkpoint", str(trained), "--out", name]) == 1
    assert expected in capsys.readouterr().err
    assert (trained.parent / "notes.html").read_text() == "my notes"


def test_a_page_replaces_its_own_page_atomically(trained):
    for _ in range(2):
        assert main(["explore", "--checkpoint", str(trained), "--out", "page.html"]) == 0
    assert explore.is_explore_page(trained.parent / "page.html")
    assert sorted(p.name for p in trained.parent.iterdir() if p.name.startswith(".")) == []


def test_data_of_another_vocabulary_is_refused(trained, capsys):
    (trained.parent / "other.txt").write_text("xyz" * 50)
    assert main(["explore", "--checkpoint", str(trained), "--data", "other.txt",
                 "--out", "page.html"]) == 1
    assert "npbigram: error:" in capsys.readouterr().err
    assert not (trained.parent / "page.html").exists()


def test_a_vocabulary_too_large_for_a_page_is_refused(tmp_path, monkeypatch, trained, capsys):
    monkeypatch.setattr(explore, "MAX_VOCAB", 10)
    assert main(["explore", "--checkpoint", str(trained), "--out", "page.html"]) == 1
    assert "above the 10 a page can show" in capsys.readouterr().err


def test_the_pages_template_is_package_data():
    """A non-editable install (pip install .) copies only the data files setup.cfg names."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = config["options.package_data"]["npbigram.tools"].replace(",", " ").split()
    templates = [path.name for path in (ROOT / "npbigram" / "tools").iterdir()
                 if path.suffix not in (".py", ".pyc") and path.is_file()]
    assert sorted(listed) == sorted(templates) == ["explore.html", "explore.js", "explore_math.js"]


def test_a_prepared_folder_gives_the_counts(trained):
    assert main(["prepare", "--data", str(trained.parent / "text.txt"), "--out", "prepared"]) == 0
    assert main(["explore", "--checkpoint", str(trained), "--data", "prepared",
                 "--out", "folder.html"]) == 0
    assert main(["explore", "--checkpoint", str(trained), "--out", "text.html"]) == 0
    from_folder, from_text = page_json(trained.parent / "folder.html"), page_json(
        trained.parent / "text.html")
    np.testing.assert_array_equal(unpacked(from_folder["counts"]), unpacked(from_text["counts"]))
    assert from_folder["batch"] == from_text["batch"]


def test_a_checkpoint_without_a_tokenizer_is_refused(tmp_path, capsys):
    save_checkpoint(tmp_path / "bare.npz", trained_trainer("numpy").model)
    assert main(["explore", "--checkpoint", "bare.npz", "--out", "page.html"]) == 1
    assert capsys.readouterr().err == ("npbigram: error: bare.npz holds no tokenizer, so its "
                                       "tokens cannot be labeled\n")
