"""See the model work on real text: the loss position by position, and sampling step by step.

For a text x_0 x_1 ... x_T, position t reads the current token x_t and is scored on the next:

    p_t = softmax(W[x_t])                       row x_t of the table, as probabilities
    loss_t = -ln p_t[x_{t+1}]                   e.g. p = 0.15 costs -ln 0.15 = 1.897 nats
    loss = mean_t loss_t                        what model(x[:-1], x[1:]) returns

A uniform guess, p = 1/V everywhere, costs ln V at every position (ln 65 = 4.17).
Sampling (model.generate) repeats: take the context's last token i, p = softmax(W[i]), draw
the next token from p, append it.

The backward pass of that loss (explain_gradient), with N positions and onehot(x) the (N,V)
one-hot rows of the inputs:

    dL/dz_t = (p_t - onehot(x_{t+1})) / N       each position pushes its target up, the rest down
    dL/dW = onehot(x)^T . dL/dz                 nonzero only in the rows read; a row read by k
                                                positions gets the sum of their k rows
"""

import codecs
import unicodedata
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..sampling import next_token_probs, sample_from

DEFAULT_TOP_K = 5
SHOWN_CONTEXT_IDS = 4  # the trace shows the last few ids of the growing context
SHOWN_POSITIONS = 6  # the gradient's table lists the first few positions that read each row
SHOWN_ENTRIES = 3  # ... and the largest few entries of each row of dL/dW
BAR_WIDTH = 20  # characters of a text bar of length 1 (p, or |p - onehot|)
ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", " ": "␣"}  # ␣ (U+2423) marks a space


def char_label(ch, encoding=None):
    """A visible label for one character: '\\n' for a newline, '␣' for a space, escapes for
    other control characters, and for characters that `encoding` (e.g. an ASCII terminal's)
    cannot show: '\\x20' for the space then."""
    if ch in ESCAPES:
        label = ESCAPES[ch]
    elif ch.isprintable():
        label = ch
    else:
        label = ch.encode("unicode_escape").decode("ascii")
    if encoding is not None and not _encodable(label, encoding):
        return "\\x20" if ch == " " else ch.encode("unicode_escape").decode("ascii")
    return label


def _encodable(text, encoding):
    try:
        codecs.encode(text, encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def token_labels(tokenizer, encoding=None):
    """The label of every token id, showable in `encoding` when given: (V,) list of str."""
    return [char_label(text, encoding) for text in tokenizer.token_texts()]


def display_width(text):
    """The terminal columns `text` takes: East Asian wide and fullwidth characters take two,
    combining marks none."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text, width):
    """`text` left-aligned in `width` terminal columns."""
    return text + " " * max(0, width - display_width(text))


def top_k_ids(probs, k):
    """The k most likely ids of one distribution (C,), most likely first."""
    return np.argsort(-probs, kind="stable")[:k]


@dataclass
class TextExplanation:
    ids: np.ndarray  # (T+1,) the text's token ids: inputs ids[:-1], targets ids[1:]
    probs: np.ndarray  # (T,C) p(next | current) at each position
    nll: np.ndarray  # (T,) -ln p_t[target_t], each position's loss
    loss: float  # the model's loss on the text, model(ids[:-1], ids[1:])


def explain_text(model, ids):
    """Each position's next-token probabilities and loss on one sequence of ids (T+1,)."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) < 2:
        raise ValueError(f"explaining needs at least two tokens, one position and its next, "
                         f"got {len(ids.reshape(-1))}")
    idx, targets = ids[None, :-1], ids[None, 1:]  # (1,T) inputs and next-token targets
    logits, loss = model(idx, targets)  # (T,C), the model's mean loss
    logp = ops.log_softmax(logits)  # (T,C)
    positions = np.arange(len(logp))
    return TextExplanation(ids=ids, probs=np.exp(logp), nll=-logp[positions, targets[0]],
                           loss=loss)


def format_explanation(explanation, labels, top_k=DEFAULT_TOP_K):
    """One line per position (current, next, p(next), -ln p(next), the top-k), then the mean."""
    ids, nll = explanation.ids, explanation.nll
    vocab_size = explanation.probs.shape[1]
    width = _label_width(labels, ids)
    lines = [f"{len(ids)} tokens, {len(nll)} position{'s' * (len(nll) != 1)}: position t reads "
             f"token t and is scored on token t+1 with -ln p(next) (a uniform guess costs "
             f"ln {vocab_size} = {np.log(vocab_size):.3f})",
             f"{'t':>4}  {'current':<7}  {pad('next', width)}  {'p(next)':>7}  {'-ln p':>6}  "
             f"most likely next"]
    for t, probs in enumerate(explanation.probs):
        current, target = ids[t], ids[t + 1]
        lines.append(f"{t:>4}  {pad(labels[current], 7)}  {pad(labels[target], width)}  "
                     f"{probs[target]:>7.4f}  {nll[t]:>6.3f}  {_format_top(probs, labels, top_k)}")
    lines.append(f"mean -ln p over the {len(nll)} position{'s' * (len(nll) != 1)}: "
                 f"{nll.mean():.4f} = the model's loss on this text, "
                 f"model(x, y) = {explanation.loss:.4f}")
    return "\n".join(lines)


@dataclass
class GenerationStep:
    context: np.ndarray  # (t,) the ids so far
    probs: np.ndarray  # (C,) p(next | context's last token)
    drawn: int  # the sampled next id


def trace_generation(model, context, max_new_tokens, rng):
    """model.generate(context[None], max_new_tokens, rng=rng) one token at a time (the same
    draws), keeping what each step saw and drew."""
    ids = list(np.asarray(context).reshape(-1))
    if not ids:
        raise ValueError("sampling needs a context of at least one token")
    steps = []
    for _ in range(max_new_tokens):
        logits = model.weight[ids[-1]][None, :]  # (1,C): a bigram reads the last token only
        probs = next_token_probs(logits)  # (1,C)
        drawn = int(sample_from(probs, rng)[0])
        steps.append(GenerationStep(context=np.array(ids), probs=probs[0], drawn=drawn))
        ids.append(drawn)
    return steps


def format_trace(steps, labels, top_k=DEFAULT_TOP_K):
    """One line per sampling step: the context's ids, its last token, the top-k, the draw."""
    width = _label_width(labels, [i for step in steps for i in (step.context[-1], step.drawn)])
    lines = [f"{'step':>4}  {'context ids':<26}  {pad('last', width)}  {pad('drew', width)}  "
             f"{'p(drew)':>7}  most likely next"]
    for n, step in enumerate(steps, 1):
        shown = ", ".join(str(int(i)) for i in step.context[-SHOWN_CONTEXT_IDS:])
        context = f"[{'..., ' if len(step.context) > SHOWN_CONTEXT_IDS else ''}{shown}]"
        lines.append(f"{n:>4}  {context:<26}  {pad(labels[step.context[-1]], width)}  "
                     f"{pad(labels[step.drawn], width)}  {step.probs[step.drawn]:>7.4f}  "
                     f"{_format_top(step.probs, labels, top_k)}")
    return "\n".join(lines)


@dataclass
class GradientExplanation:
    inputs: np.ndarray  # (N,) the id each position reads
    targets: np.ndarray  # (N,) the id it is scored on
    probs: np.ndarray  # (N,C) p_n = softmax(z_n), float64
    dlogits: np.ndarray  # (N,C) dL/dz_n = (p_n - onehot(y_n)) / N
    grad: np.ndarray  # (V,C) dL/dW = onehot(x)^T . dlogits, the scatter-add of dlogits
    loss: float

    @property
    def reads(self):
        """(V,) how many positions read each row of W."""
        return np.bincount(self.inputs, minlength=len(self.grad))

    def position_gradient(self, position):
        """(C,) p_n - onehot(y_n): dL/dz_n before the division by N."""
        return self.dlogits[position] * len(self.inputs)


def explain_gradient(logits, inputs, targets):
    """The backward pass of the cross-entropy of logits (N,C) (or (B,T,C)) against targets,
    for a table W whose rows `inputs` (same shape as targets) were looked up."""
    inputs, targets = np.asarray(inputs).reshape(-1), np.asarray(targets).reshape(-1)
    if len(targets) == 0:
        raise ValueError("the gradient needs at least one position: two tokens, the one read "
                         "and the next")
    logits = np.asarray(logits, dtype=np.float64).reshape(len(targets), -1)  # (N,C)
    loss, probs = ops.cross_entropy_forward(logits, targets)
    dlogits = ops.cross_entropy_backward(probs, targets)  # (N,C)
    return GradientExplanation(inputs=inputs, targets=targets, probs=probs, dlogits=dlogits,
                               grad=ops.embedding_backward(dlogits, inputs, logits.shape[1]),
                               loss=float(loss))


def format_position_gradient(explanation, position, labels, top_k=DEFAULT_TOP_K, encoding=None):
    """Bars of p and of p - onehot at one position: its target, then the top-k other tokens;
    p - onehot's bars grow left of the line when negative, right when positive. The bars are
    drawn with '█', or '#' where `encoding` cannot show it."""
    n_positions = len(explanation.inputs)
    if not 0 <= position < n_positions:
        raise ValueError(f"position {position} is outside the {n_positions} "
                         f"position{'s' * (n_positions != 1)}, 0 to {n_positions - 1}")
    bar = "█" if encoding is None or _encodable("█", encoding) else "#"
    probs = explanation.probs[position]
    push = explanation.position_gradient(position)  # p - onehot
    current, target = explanation.inputs[position], explanation.targets[position]
    others = [j for j in top_k_ids(probs, top_k + 1) if j != target][:top_k]
    shown = [target, *others]
    width = _label_width(labels, shown)
    lines = [f"position {position} reads '{labels[current]}' and is scored on "
             f"'{labels[target]}': dL/dz_{position} = (p - onehot('{labels[target]}')) / "
             f"{n_positions}",
             f"  {pad('next', width)}  {'p':>6}  {pad('', BAR_WIDTH)}  {'p - onehot':>10}  "
             f"(- pushes the logit up, + pushes it down)"]
    for j in shown:
        length = round(abs(push[j]) * BAR_WIDTH)
        signed = (f"{bar * length:>{BAR_WIDTH}}|" if push[j] < 0
                  else f"{'':>{BAR_WIDTH}}|{bar * length}")
        lines.append(f"  {pad(labels[j], width)}  {probs[j]:>6.4f}  "
                     f"{bar * round(probs[j] * BAR_WIDTH):<{BAR_WIDTH}}  {push[j]:>+10.4f}  "
                     f"{signed}")
    lines.append(f"  the other {len(probs) - len(shown)} tokens: p - onehot = p, together "
                 f"{1 - probs[shown].sum():+.4f} (each row of p - onehot sums to 0)")
    return "\n".join(lines)


def format_batch_gradient(explanation, labels):
    """dL/dW row by row, only the rows read: how many positions read each (* when more than
    one: its row is the sum of theirs), which, and the row's largest entries."""
    reads, grad = explanation.reads, explanation.grad
    rows = np.flatnonzero(reads)
    repeated = rows[reads[rows] > 1]
    n_positions, vocab_size = len(explanation.inputs), len(grad)
    width = _label_width(labels, rows)
    lines = [f"dL/dW = onehot(x)^T . dL/dz: the {n_positions} positions read {len(rows)} of the "
             f"{vocab_size} rows of W; the other {vocab_size - len(rows)} rows are exactly 0",
             "a row read by k positions gets the sum of their k rows of dL/dz (a scatter-add, "
             "np.add.at); * marks k > 1"]
    positions = {i: _first_positions(np.flatnonzero(explanation.inputs == i)) for i in rows}
    positions_width = max(len("positions"), *(len(text) for text in positions.values()))
    lines.append(f"   {pad('row', width)}  {'reads':>5}  {'positions':<{positions_width}}  "
                 f"largest entries of dL/dW in the row")
    for i in rows:
        largest = np.argsort(-np.abs(grad[i]), kind="stable")[:SHOWN_ENTRIES]
        entries = "  ".join(f"{labels[j]} {grad[i, j]:+.4f}" for j in largest)
        lines.append(f" {'*' if reads[i] > 1 else ' '} {pad(labels[i], width)}  {reads[i]:>5}  "
                     f"{positions[i]:<{positions_width}}  {entries}")
    if len(repeated):
        names = ", ".join(f"'{labels[i]}'" for i in repeated)
        lines.append(f"dW[x] += dL/dz in place of the scatter-add would keep only one "
                     f"position's row in {names}")
    return "\n".join(lines)


def _first_positions(positions):
    shown = ", ".join(str(n) for n in positions[:SHOWN_POSITIONS])
    return shown + (", ..." if len(positions) > SHOWN_POSITIONS else "")


def _label_width(labels, ids):
    """Columns of a table's token column: 4, or the widest label shown in it (e.g. \\u5e8a)."""
    return max([4, *(display_width(labels[i]) for i in ids)])


def _format_top(probs, labels, top_k):
    return "  ".join(f"{labels[j]} {probs[j]:.3f}" for j in top_k_ids(probs, top_k))
