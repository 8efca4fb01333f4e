"""The peers: bigram.py's training step in the CPU tools a user would try instead of npbigram,
and the same step written by hand in C, the practical limit of a compiled step.

Each runs one AdamW step (torch.optim.AdamW's defaults) of the float32 (V, V) table on a (B, T)
batch in memory, loss = mean cross-entropy of the next token: PyTorch eager (bigram.py's model,
npbigram.reference_torch, and step), torch.compile (the model, and the optimizer step as in
PyTorch's recipe "(beta) Compiling the optimizer with torch.compile"), JAX (jax.jit of
value_and_grad and optax.adamw; it dispatches asynchronously, so each step waits on its results),
MLX (mx.compile of mx.value_and_grad and mlx.optimizers.AdamW; lazy, so each step evaluates its
results), autograd (autograd.grad of the NumPy loss, npbigram's NumPy AdamW), tinygrad (TinyJit of
the loss, backward and tinygrad's AdamW) and the C step (benchmarks/c/bigram_step.c: forward, loss,
backward and AdamW in one OpenMP pass, built with gcc and called through ctypes).
benchmarks/README.md ("What is compared") says more.
"""

import ctypes
import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

SEED = 1337
LEARNING_RATE = 1e-2
BETAS = (0.9, 0.999)  # torch.optim.AdamW's defaults, given explicitly to the other tools
EPS = 1e-8
WEIGHT_DECAY = 0.01


class PeerSpec(NamedTuple):
    short: str  # the table header
    label: str
    modules: tuple  # the modules it imports
    hint: str  # how to install them
    # peak bytes of a step per logit where it holds the logits, their softmax and gradient
    # whole (torch.compile and JAX measured about 9 at V = 4096, 512x128: counted with a margin)
    bytes_per_logit: int
    compiled: bool = False  # its first call at a size is a compilation
    threaded: bool = True  # it takes the thread setting (MLX has none on the CPU: one thread)
    limit: bool = False  # written by hand as the limit, not a tool: never the "best peer"


PEERS = {  # impl -> PeerSpec, in table order
    "torch": PeerSpec("PyTorch", "PyTorch eager CPU, bigram.py's step", ("torch",),
                      "pip install torch", 18),
    "torch-compile": PeerSpec(
        "torch.compile", ("PyTorch torch.compile (inductor): compiled forward, loss and "
                          "backward, compiled AdamW step"), ("torch",), "pip install torch", 18,
        compiled=True),
    "jax": PeerSpec("JAX", "JAX jax.jit of value_and_grad and optax.adamw", ("jax", "optax"),
                    "pip install -e '.[bench-jax]'", 12, compiled=True),
    "mlx": PeerSpec("MLX", "MLX mx.compile of mx.value_and_grad and mlx.optimizers.AdamW",
                    ("mlx",), "pip install -e '.[bench-mlx]'", 18, compiled=True,
                    threaded=False),
    "autograd": PeerSpec("autograd", "autograd.grad of the NumPy loss, npbigram's NumPy AdamW",
                         ("autograd",), "pip install -e '.[bench-autograd]'", 40,
                         threaded=False),
    "tinygrad": PeerSpec("tinygrad", "tinygrad TinyJit of the loss, backward and AdamW",
                         ("tinygrad",), "pip install -e '.[bench-tinygrad]'", 18,
                         compiled=True),
    "c": PeerSpec("C step", "hand-written C step, one OpenMP pass (benchmarks/c/bigram_step.c)",
                  (), "", 0, limit=True),
}
COMPILED = tuple(impl for impl, spec in PEERS.items() if spec.compiled)
TOOLS = tuple(impl for impl, spec in PEERS.items() if not spec.limit)  # the best peer's candidates
C_STEP = "c"


def install_hint(impl):
    """None if the peer's modules are importable, else the command that installs them."""
    spec = PEERS[impl]
    if all(importlib.util.find_spec(m) is not None for m in spec.modules):
        return None
    return spec.hint


def unavailable_reason(impl):
    """None if the installed peer can run here, else why not (a compiler it needs is missing)."""
    on_cpu = os.environ.get("DEV", "CPU").startswith("CPU")  # tinygrad's device setting
    if impl == "tinygrad" and on_cpu and not shutil.which(os.environ.get("CC", "clang")):
        return ("tinygrad's CPU device compiles its kernels with clang (`$CC`), and no clang "
                "is installed (tinygrad 0.14 builds its device's own programs with clang even "
                "under DEV=CPU:LLVM)")
    if impl == C_STEP and not shutil.which(c_compiler()):
        return f"no C compiler: the C step is built with {c_compiler()} (`$CC`), not found"
    return None


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
    after torch.manual_seed(SEED) for the torch peers, initial_weight(V) for the others."""
    if impl not in BUILDERS:
        raise ValueError(f"unknown peer {impl!r}")
    if weight is None and impl not in ("torch", "torch-compile"):
        weight = initial_weight(vocab_size)
    return BUILDERS[impl](vocab_size, threads, np.asarray(xb), np.asarray(yb), weight)


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
    xb, yb = torch.as_tensor(xb), torch.as_tensor(yb)
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
    w = jnp.asarray(weight)
    state = [w, tx.init(w)]
    xb, yb = jnp.asarray(xb), jnp.asarray(yb)

    def step():
        state[0], state[1], _ = jax.block_until_ready(update(state[0], state[1], xb, yb))

    return Peer(step, lambda: np.array(state[0]))


def _mlx_peer(vocab_size, threads, xb, yb, weight):
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx import nn

    mx.set_default_device(mx.cpu)
    # MLX's AdamW defaults differ from torch's (no bias correction): every value given
    opt = optim.AdamW(LEARNING_RATE, betas=list(BETAS), eps=EPS, weight_decay=WEIGHT_DECAY,
                      bias_correction=True)
    params = {"weight": mx.array(weight)}
    opt.init(params)

    def loss_fn(params, xb, yb):
        logits = params["weight"][xb.reshape(-1)]  # (B*T, V)
        return nn.losses.cross_entropy(logits, yb.reshape(-1), reduction="mean")

    value_and_grad = mx.value_and_grad(loss_fn)
    state = [params, opt.state]  # what the compiled step reads and replaces

    @partial(mx.compile, inputs=state, outputs=state)
    def update(xb, yb):
        loss, grads = value_and_grad(params, xb, yb)
        params.update(opt.apply_gradients(grads, params))
        return loss

    xb, yb = mx.array(xb), mx.array(yb)

    def step():
        mx.eval(update(xb, yb), state)

    return Peer(step, lambda: np.array(params["weight"]))


def _autograd_peer(vocab_size, threads, xb, yb, weight):
    import autograd.numpy as anp
    from autograd import grad
    from autograd.scipy.special import logsumexp

    from npbigram import AdamW, BigramLanguageModel

    xs, ys = xb.reshape(-1), yb.reshape(-1)
    positions = np.arange(len(ys))

    def loss(w):
        """mean_n (logsumexp(W[x_n]) - W[x_n, y_n]): the cross-entropy in NumPy."""
        logits = w[xs]  # (B*T, V)
        return anp.mean(logsumexp(logits, axis=1) - logits[positions, ys])

    loss_grad = grad(loss)
    model = BigramLanguageModel.from_weight(np.array(weight, dtype=np.float32),
                                            backend="numpy")
    opt = AdamW(model, lr=LEARNING_RATE, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)

    def step():
        model.grad = loss_grad(model.weight)
        opt.step()

    return Peer(step, lambda: model.weight.copy())


def _tinygrad_peer(vocab_size, threads, xb, yb, weight):
    os.environ.setdefault("DEV", "CPU")  # not another device tinygrad finds first
    os.environ.setdefault("NUM_CPU_THREADS", str(threads))
    from tinygrad import Context, Device, Tensor, TinyJit
    from tinygrad.nn.optim import AdamW

    w = Tensor(np.array(weight, dtype=np.float32)).realize()
    opt = AdamW([w], lr=LEARNING_RATE, b1=BETAS[0], b2=BETAS[1], eps=EPS,
                weight_decay=WEIGHT_DECAY)
    xs, ys = (Tensor(ids.reshape(-1).astype(np.int32)).realize() for ids in (xb, yb))

    @TinyJit
    def update(xs, ys):
        opt.zero_grad()
        loss = w[xs].sparse_categorical_crossentropy(ys)  # the mean over B*T
        loss.backward()
        opt.step()
        return loss.realize()

    def step():
        with Context(TRAINING=1):
            update(xs, ys)
        Device[w.device].synchronize()  # the device runs the kernels asynchronously

    return Peer(step, lambda: w.numpy().copy())


# the C step: built once per source, flags and compiler into a cache folder outside the tree

C_SOURCE = Path(__file__).resolve().parent / "c" / "bigram_step.c"
# -fno-math-errno: the step never reads errno, and sqrtf becomes one vectorized instruction
C_FLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-shared", "-fPIC")
# where the built library goes (default: a folder in this machine's temp dir); suite.py gives
# each run its own
C_CACHE_VARIABLE = "NPBIGRAM_BENCH_C_CACHE"


def c_compiler():
    return os.environ.get("CC", "gcc")


class _BigramStep(ctypes.Structure):
    """bigram_step.c's BigramStep, field for field."""

    _fields_ = [*((name, ctypes.c_void_p) for name in ("weight", "m", "v", "inputs", "targets")),
                ("n_positions", ctypes.c_int64), ("vocab_size", ctypes.c_int64),
                *((name, ctypes.c_float) for name in ("lr", "beta1", "beta2", "eps",
                                                      "weight_decay")),
                ("step", ctypes.c_int64), ("loss", ctypes.c_float),
                ("row_start", ctypes.c_void_p), ("targets_by_row", ctypes.c_void_p)]


def build_c_step():
    """The path of bigram_step.c built as a shared library, compiled if not cached yet."""
    compiler = shutil.which(c_compiler())
    source = C_SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(C_FLAGS).encode(), compiler.encode()]))
    cache = Path(os.environ.get(C_CACHE_VARIABLE)
                 or Path(tempfile.gettempdir()) / "npbigram-bench-c")
    library = cache / f"bigram_step-{key.hexdigest()[:16]}.so"
    if not library.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            built = Path(tmp) / library.name
            proc = subprocess.run([compiler, *C_FLAGS, "-o", str(built), str(C_SOURCE), "-lm"],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{compiler} could not build {C_SOURCE.name}: "
                                   f"{proc.stderr.strip()}")
            os.replace(built, library)  # whole, even with another build running beside it
    return library


def _c_peer(vocab_size, threads, xb, yb, weight):
    lib = ctypes.CDLL(str(build_c_step()))
    lib.bigram_step.argtypes = [ctypes.POINTER(_BigramStep)]
    lib.bigram_step.restype = ctypes.c_int
    lib.bigram_set_threads.argtypes = [ctypes.c_int]
    lib.bigram_set_threads(threads)
    xs, ys = (np.ascontiguousarray(ids.reshape(-1), dtype=np.int64) for ids in (xb, yb))
    if not all(((ids >= 0) & (ids < vocab_size)).all() for ids in (xs, ys)):
        raise ValueError(f"token ids must lie in [0, {vocab_size})")
    arrays = {"weight": np.array(weight, dtype=np.float32, order="C"),
              "m": np.zeros((vocab_size, vocab_size), np.float32),
              "v": np.zeros((vocab_size, vocab_size), np.float32), "inputs": xs, "targets": ys,
              "row_start": np.zeros(vocab_size + 1, np.int64),
              "targets_by_row": np.zeros(len(xs), np.int64)}
    state = _BigramStep(**{name: a.ctypes.data for name, a in arrays.items()},
                        n_positions=len(xs), vocab_size=vocab_size, lr=LEARNING_RATE,
                        beta1=BETAS[0], beta2=BETAS[1], eps=EPS, weight_decay=WEIGHT_DECAY,
                        step=0)
    pointer, bigram_step = ctypes.pointer(state), lib.bigram_step

    def step():
        if bigram_step(pointer) != 0:
            raise MemoryError("bigram_step.c could not allocate its scratch memory")

    step.arrays = arrays  # the memory the library reads and writes lives as long as the step
    return Peer(step, lambda: arrays["weight"].copy())


BUILDERS = {"torch": partial(_torch_peer, False), "torch-compile": partial(_torch_peer, True),
            "jax": _jax_peer, "mlx": _mlx_peer, "autograd": _autograd_peer,
            "tinygrad": _tinygrad_peer, "c": _c_peer}
