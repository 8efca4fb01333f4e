"""`npbigram explore`: one self-contained HTML page of a trained model to poke at in a browser.

The page (explore.html beside this module, with its script, explore_math.js and explore.js,
and the model's numbers as JSON inlined: no network request of any kind, it opens from disk)
shows

    the table        P = softmax(W) (V,V) as a heatmap, beside the counted C_ij / n_i of the
                     train split when the data is known; a row's bars, top tokens and its part
                     of the train loss, (n_i / N) * sum_j -P^c_ij ln P_ij
    one batch        xb, yb (B,T); for each position n the row W[xb_n] as logits, p = softmax,
                     -ln p[yb_n] and the gradient row (p - onehot(yb_n)) / N; positions that
                     read one row add their gradient rows into it (scatter-add)
    training         the history's losses against the floor, and the table at each snapshot
    generation       draws from softmax(W[last] / temperature) over the top k, step by step

The page computes all of it in JavaScript from W itself; the Python side only writes W, the
counts, the batch and the model's own loss on it, which the tests compare with the page's.
"""

import base64
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..data.corpus import encode_file, pair_counts, train_val_split
from ..data.prepared import load_training_data
from ..utils.files import atomic_write_bytes, check_output, file_head
from .explain import token_labels
from .lecture import BATCH_SIZE, BLOCK_SIZE, LECTURE_SEED, lecture_batch
from .optimum import floor_loss

GENERATOR = '<meta name="generator" content="npbigram explore">'  # marks a page of ours
MAX_VOCAB = 2048  # a table of 16 MiB of float32: larger pages stop being usable
PAGE_SUFFIXES = (".html", ".htm")
TEMPLATE_MARKS = {"data": "/*npbigram:data*/", "script": "/*npbigram:script*/"}
SCRIPTS = ("explore_math.js", "explore.js")  # the page's script, in this order


@dataclass
class PageBatch:
    xb: np.ndarray  # (B,T) inputs
    yb: np.ndarray  # (B,T) targets
    about: str  # where it comes from, as the page says it
    loss: float  # model(xb, yb)


def check_page_path(path, flag="--out"):
    """Fail before any work unless `path` is an .html file that can be written and holds
    nothing but (at most) a page this command wrote."""
    if Path(path).suffix.lower() not in PAGE_SUFFIXES:
        raise ValueError(f"pages are HTML files: {flag} {path} should end in .html")
    check_output(path, flag, "a page written by npbigram explore", is_explore_page)


def is_explore_page(path):
    return GENERATOR.encode() in file_head(path, 1024)


def train_split(tokenizer, path):
    """(train ids (n,), train pair counts (V,V)) of a text file under `tokenizer` (a
    checkpoint's), or of a folder npbigram prepare wrote with the same vocabulary."""
    if Path(path).is_dir():
        prepared, (train, _), counts = load_training_data(path)
        if prepared.to_json() != tokenizer.to_json():
            raise ValueError(f"{path} was prepared with another vocabulary than the checkpoint's")
        return train, (counts["train"] if counts is not None
                       else pair_counts(train, tokenizer.vocab_size))
    train, _ = train_val_split(encode_file(tokenizer, path))
    if len(train) < 2:
        raise ValueError(f"{path}'s train split holds {len(train)} tokens: no pair to count")
    return train, pair_counts(train, tokenizer.vocab_size)


def page_batch(checkpoint, tokenizer, train):
    """The (B,T) = (4,8) batch the page explains, drawn as the lecture draws its first one:
    torch.manual_seed(seed) with the run's seed, then get_batch('train'); for bigram.py's seed,
    1337, the lecture's batch itself. Without data, 4 texts the model generates after the
    start token."""
    seed, model = run_seed(checkpoint), checkpoint.model
    if train is None or len(train) <= BLOCK_SIZE:
        start = np.full((BATCH_SIZE, 1), tokenizer.start_id, dtype=np.int64)
        ids = model.generate(start, BLOCK_SIZE, seed=seed)  # (B, T+1)
        xb, yb = ids[:, :-1], ids[:, 1:]
        about = (f"no data known, so {BATCH_SIZE} texts the model generated after token "
                 f"{tokenizer.start_id} (seed {seed})")
    else:
        starts, xb, yb = lecture_batch(train, seed)
        about = ("the lecture's batch" if seed == LECTURE_SEED else "drawn as the lecture's") + (
            f": torch.manual_seed({seed}), get_batch('train') at {starts.tolist()}")
    _, loss = model(xb, yb, return_logits=False)
    return PageBatch(xb=xb, yb=yb, about=about, loss=float(loss))


def run_seed(checkpoint):
    """The seed of the checkpoint's run (bigram.py's, 1337, for one saved without a config)."""
    return int(checkpoint.config.get("seed", LECTURE_SEED))


def packed(table):
    """A numeric array as the page reads it: its dtype and its bytes (little-endian) in
    base64, for a JavaScript typed array of that type."""
    table = np.ascontiguousarray(table, dtype=np.dtype(table.dtype).newbyteorder("<"))
    return {"dtype": table.dtype.name, "shape": list(table.shape),
            "base64": base64.b64encode(table.tobytes()).decode("ascii")}


def page_data(checkpoint, tokenizer, name, batch, counts=None, data_name=None):
    """Everything the page shows, as JSON-serializable values."""
    if counts is not None:  # exact in a float64 (and in JavaScript's numbers) below 2^53
        counts = counts.astype(np.uint32 if counts.max() < 2**32 else np.float64)
    return {
        "name": name,
        "step": checkpoint.step,
        "tokenizer": tokenizer.kind,
        "labels": token_labels(tokenizer),
        "texts": tokenizer.token_texts(),
        "start_id": int(tokenizer.start_id),
        "weight": packed(checkpoint.model.weight),
        "counts": None if counts is None else packed(counts),
        "data": data_name,
        "floor": None if counts is None else floor_loss(counts),
        "batch": {"xb": batch.xb.tolist(), "yb": batch.yb.tolist(), "about": batch.about,
                  "model_loss": batch.loss},
        "history": [{key: evaluation[key] for key in ("step", "train", "val")}
                    for evaluation in checkpoint.history],
        "snapshots": [{"step": int(step), "weight": packed(table)}
                      for step, table in checkpoint.snapshots],
        "seed": run_seed(checkpoint),
    }


def render_page(data):
    """The page's HTML: the template with its script and `data` inlined."""
    folder = resources.files(__package__)
    html = folder.joinpath("explore.html").read_text(encoding="utf-8")
    script = "\n".join(folder.joinpath(name).read_text(encoding="utf-8") for name in SCRIPTS)
    # inside <script>, "</" could end the element: JSON writes "<" as \u003c instead
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")
    for key, value in (("script", script), ("data", payload)):
        if html.count(TEMPLATE_MARKS[key]) != 1:
            raise RuntimeError(f"explore.html must hold {TEMPLATE_MARKS[key]} once")
        html = html.replace(TEMPLATE_MARKS[key], value)
    return html


def write_page(path, checkpoint, tokenizer, name, data_path=None):
    """Write the explore page of `checkpoint` (read from a file called `name`) to `path`, with
    the counts and a batch of the text at `data_path` when given. Returns the PageBatch."""
    vocab_size = checkpoint.model.vocab_size
    if vocab_size > MAX_VOCAB:
        raise ValueError(f"the checkpoint's vocabulary of {vocab_size:,} tokens is above the "
                         f"{MAX_VOCAB:,} a page can show")
    train, counts = train_split(tokenizer, data_path) if data_path is not None else (None, None)
    batch = page_batch(checkpoint, tokenizer, train)
    data_name = None if data_path is None else Path(data_path).name
    html = render_page(page_data(checkpoint, tokenizer, name, batch, counts, data_name))
    atomic_write_bytes(path, html.encode("utf-8"), "the page")
    return batch
