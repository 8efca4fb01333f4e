"""The peers: bigram.py's training step in the CPU tools a user would try instead of npbigram.

Each runs one AdamW step (torch.optim.AdamW's defaults) of the float32 (V, V) table on a (B, T)
batch in memory, loss = mean cross-entropy of the next token: PyTorch eager (bigram.py's model,
npbigram.reference_torch, and step), torch.compile (the model, and the optimizer step as in
PyTorch's recipe "(beta) Compiling the optimizer with torch.compile") and JAX (jax.jit of
value_and_grad and optax.adamw; it dispatches asynchronously, so each step waits on its results).
benchmarks/README.md ("What is compared") says more.
"""

import importlib.util
import os

import numpy as np

SEED = 1337
LEARNING_RATE = 1e-2
BETAS = (0.9, 0.999)  # torch.optim.AdamW's defaults, given explicitly to optax
EPS = 1e-8
WEIGHT_DECAY = 0.01

# impl -> (short name, label, modules it imports, how to install them, peak bytes of a step per
# logit: the logits, their softmax and gradient held whole; torch.compile and JAX measured about
# 9 at V = 4096, 512x128, counted with a margin)
PEERS = {
    "torch": ("PyTorch", "PyTorch eager CPU, bigram.py's step", ("torch",),
              "pip install torch", 18),
    "torch-compile": ("torch.compile",
                      ("PyTorch torch.compile (inductor): compiled forward, loss and backward, "
                       "compiled AdamW step"), ("torch",), "pip install torch", 18),
    "jax": ("JAX", "JAX jax.jit of value_and_grad and optax.adamw", ("jax", "optax"),
            "pip install -e '.[bench]'", 12),
}
COMPILED = ("torch-compile", "jax")  # their first call at a size is a compilation


def install_hint(impl):
    """None if the peer's modules are importable, else the command that installs them."""
    _, _, modules, hint, _ = PEERS[impl]
    if all(importlib.util.find_spec(m) is not None for m in modules):
        return None
    return hint


def initial_weight(vocab_size):
    """N(0, 1) float32 (V, V), nn.Embedding's initialization, for the peers without torch."""
    return np.random.default_rng(SEED).standard_normal((vocab_size, vocab_size),
                                                        dtype=np.float32)


class Peer:
    """A built peer: step() runs one training step (and waits for it); weight() is the table
    as a NumPy array."""

    def __init__(self, step, weight):
        self.step, self.weight = step, weight


def build(impl, vocab_size, threads, xb, yb, weight=None):
    """The peer `impl` training a (V, V) table on the batch xb, yb ((B, T) int arrays).
    weight: the initial table (V, V) float32; default: torch's nn.Embedding initialization
    after torch.manual_seed(SEED) for the torch peers, initial_weight(V) for JAX."""
    if impl in ("torch", "torch-compile"):
        return _torch_peer(impl == "torch-compile", vocab_size, threads, xb, yb, weight)
    if impl == "jax":
        return _jax_peer(vocab_size, threads, xb, yb, weight)
    raise ValueError(f"unknown peer {impl!r}")


def _torch_peer(compiled, vocab_size, threads, xb, yb, weight):
    import torch

    from npbigram.reference_torch import BigramLanguageModel

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = BigramLanguageModel(vocab_size)
    if weight is not None:
        with torch.no_grad():
            model.token_embedding_table.weight.copy_(torch.from_numpy(weight))
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, betas=BETAS, eps=EPS,
                            weight_decay=WEIGHT_DECAY)
    xb, yb = torch.as_tensor(np.asarray(xb)), torch.as_tensor(np.asarray(yb))
    forward, opt_step = model, opt.step
    if compiled:
        torch._dynamo.reset()  # compile this model afresh, whatever was compiled before
        forward = torch.compile(model, dynamic=False)
        opt_step = torch.compile(lambda: opt.step(), fullgraph=False, dynamic=False)

    def step():
        _, loss = forward(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt_step()

    def read_weight():
        return model.token_embedding_table.weight.detach().numpy().copy()

    return Peer(step, read_weight)


def _jax_peer(vocab_size, threads, xb, yb, weight):
    # the CPU client sizes its thread pool when the backend starts, from PJRT_NPROC if set
    os.environ.setdefault("PJRT_NPROC", str(threads))
    import jax
    import jax.numpy as jnp
    import optax

    tx = optax.adamw(LEARNING_RATE, b1=BETAS[0], b2=BETAS[1], eps=EPS,
                     weight_decay=WEIGHT_DECAY)

    def loss_fn(w, xb, yb):
        logits = jnp.take(w, xb, axis=0).reshape(-1, vocab_size)  # (B*T, V)
        return optax.losses.softmax_cross_entropy_with_integer_labels(
            logits, yb.reshape(-1)).mean()

    def update(w, opt_state, xb, yb):
        loss, grad = jax.value_and_grad(loss_fn)(w, xb, yb)
        updates, opt_state = tx.update(grad, opt_state, w)
        return optax.apply_updates(w, updates), opt_state, loss

    update = jax.jit(update, donate_argnums=(0, 1))
    w = jnp.asarray(initial_weight(vocab_size) if weight is None else weight)
    state = [w, tx.init(w)]
    xb, yb = jnp.asarray(np.asarray(xb)), jnp.asarray(np.asarray(yb))

    def step():
        state[0], state[1], _ = jax.block_until_ready(update(state[0], state[1], xb, yb))

    return Peer(step, lambda: np.array(state[0]))
