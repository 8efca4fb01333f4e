"""See the model work on real text: the loss position by position, and sampling step by step.

For a text x_0 x_1 ... x_T, position t reads the current token x_t and is scored on the next:

    p_t = softmax(W[x_t])                       row x_t of the table, as probabilities
    loss_t = -ln p_t[x_{t+1}]                   e.g. p = 0.15 costs -ln 0.15 = 1.897 nats
    loss = mean_t loss_t                        what model(x[:-1], x[1:]) returns

A uniform guess, p = 1/V everywhere, costs ln V at every position (ln 65 = 4.17).
Sampling (model.generate) repeats: take the context's last token i, p = softmax(W[i]), draw
the next token from p, append it.
"""

from dataclasses import dataclass

import numpy as np

from . import ops
from .checkpoint import load_checkpoint
from .model import next_token_probs, sample_from

DEFAULT_TOP_K = 5
SHOWN_CONTEXT_IDS = 4  # the trace shows the last few ids of the growing context
ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", " ": "␣"}  # ␣ (U+2423) marks a space


def char_label(ch):
    """A visible label for one character: '\\n' for a newline, '␣' for a space, escapes for
    other control characters."""
    if ch in ESCAPES:
        return ESCAPES[ch]
    if ch.isprintable():
        return ch
    return ch.encode("unicode_escape").decode("ascii")


def token_labels(tokenizer):
    """The label of every token id: (V,) list of str."""
    if tokenizer.kind == "byte":
        return [char_label(chr(b)) if b < 128 else f"\\x{b:02x}" for b in range(256)]
    return [char_label(ch) for ch in tokenizer.chars]


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
    lines = [f"{len(ids)} tokens, {len(nll)} position{'s' * (len(nll) != 1)}: position t reads "
             f"token t and is scored on token t+1 with -ln p(next) (a uniform guess costs "
             f"ln {vocab_size} = {np.log(vocab_size):.3f})",
             f"{'t':>4}  {'current':<7}  {'next':<4}  {'p(next)':>7}  {'-ln p':>6}  "
             f"most likely next"]
    for t, probs in enumerate(explanation.probs):
        current, target = ids[t], ids[t + 1]
        lines.append(f"{t:>4}  {labels[current]:<7}  {labels[target]:<4}  "
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
    """model.generate one token at a time, keeping what each step saw and drew.

    Same draws as model.generate(context[None], max_new_tokens, rng=rng) from the same rng.
    """
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
    lines = [f"{'step':>4}  {'context ids':<26}  {'last':<4}  {'drew':<4}  {'p(drew)':>7}  "
             f"most likely next"]
    for n, step in enumerate(steps, 1):
        shown = ", ".join(str(int(i)) for i in step.context[-SHOWN_CONTEXT_IDS:])
        context = f"[{'..., ' if len(step.context) > SHOWN_CONTEXT_IDS else ''}{shown}]"
        lines.append(f"{n:>4}  {context:<26}  {labels[step.context[-1]]:<4}  "
                     f"{labels[step.drawn]:<4}  {step.probs[step.drawn]:>7.4f}  "
                     f"{_format_top(step.probs, labels, top_k)}")
    return "\n".join(lines)


def _format_top(probs, labels, top_k):
    return "  ".join(f"{labels[j]} {probs[j]:.3f}" for j in top_k_ids(probs, top_k))


# ----------------------------------------------------------------------------------------------
# command line


def add_parser(sub):
    p = sub.add_parser(
        "explain", help="show the loss position by position, and sampling step by step",
        description="For each position of TEXT: the current character, the next one, the "
                    "model's top next-character probabilities, p(next) and -ln p(next); then "
                    "their mean, the model's loss on TEXT. --generate N traces sampling.")
    p.add_argument("text", nargs="?", metavar="TEXT",
                   help="text to score (and, with --generate, to continue)")
    p.add_argument("--checkpoint", required=True, metavar="PATH")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, metavar="K",
                   help=f"how many of the most likely next characters to show "
                        f"(default: {DEFAULT_TOP_K}); sampling uses the full distribution")
    p.add_argument("--generate", type=int, default=0, metavar="N",
                   help="sample N characters after TEXT (or after token 0, as bigram.py) and "
                        "show each step")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampling")
    p.set_defaults(run=run_explain)


def run_explain(args):
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    if args.generate < 0:
        raise ValueError(f"--generate must be >= 0, got {args.generate}")
    if not args.text and not args.generate:
        raise ValueError("give a TEXT to explain, --generate N to trace sampling, or both")
    checkpoint = load_checkpoint(args.checkpoint)
    tokenizer, model = checkpoint.tokenizer, checkpoint.model
    if tokenizer is None:
        raise ValueError(f"{args.checkpoint} holds no tokenizer, so its tokens cannot be shown")
    labels = token_labels(tokenizer)
    ids = tokenizer.encode(args.text) if args.text else np.zeros(1, dtype=np.int64)
    if args.text and (len(ids) >= 2 or not args.generate):
        print(format_explanation(explain_text(model, ids), labels, args.top_k))
    if args.generate:
        if args.text:
            print()
        start = repr(args.text) if args.text else f"token 0 ({labels[0]}), as bigram.py"
        seed = "unseeded" if args.seed is None else f"seed {args.seed}"
        print(f"sampling {args.generate} tokens after {start} ({seed})")
        steps = trace_generation(model, ids, args.generate, np.random.default_rng(args.seed))
        print(format_trace(steps, labels, args.top_k))
        drawn = np.array([step.drawn for step in steps], dtype=ids.dtype)
        print("text: " + repr(tokenizer.decode(np.concatenate([ids, drawn]))))
    return 0
