"""What every optimizer shares: the step counter, the state arrays, the coefficient table the
compiled kernels read, and the checkpoint's state dict.

A subclass (one module each) sets `kind`, `hyperparameters` (the names saved in checkpoints),
`Coefficients` (a namedtuple naming the scalars its update needs at step t, computed by
`step_coefficients(t)`), fills `self.state` with its arrays, and writes the update once in NumPy
in `reference_update`. Its numba kernel is registered under its Coefficients' field names in
npbigram/engine/update_kernels.py.
"""

import functools

import numpy as np


class Optimizer:
    kind = None
    hyperparameters = ()
    Coefficients = None

    def __init__(self, model):
        self.model = model
        self.t = 0  # steps taken
        self.state = {}  # name -> array (V,C): everything the update carries from step to step

    def step(self):
        """One update of model.weight from model.grad, on the model's engine."""
        if self.model.grad is None:
            raise RuntimeError("no gradient: call model.backward() before opt.step()")
        self.model.engine.update(self, self.model.weight, self.model.grad, self.coefficients())
        self.advance(1)

    def coefficients(self, steps=1):
        """The coefficients of the next `steps` steps (t+1 .. t+steps): a (steps,) structured
        array with the fields of Coefficients in the weight's dtype, so the scalars are
        rounded as the weight's arithmetic rounds them and NumPy and the kernels give the
        same bits. (A record array costs a compiled kernel less to receive than a tuple.)"""
        return np.array([self.step_coefficients(self.t + s) for s in range(1, steps + 1)],
                        dtype=coefficient_dtype(self.Coefficients, self.model.weight.dtype))

    def coefficients_at(self, coefs, s):
        """Row s of a coefficients() table as Coefficients of Python floats (exact values of
        the rounded scalars), for reference_update."""
        return self.Coefficients(*coefs[s].tolist())

    def kernel_state(self):
        """The state arrays as the compiled update kernel takes them: a tuple, in order."""
        return tuple(self.state.values())

    def advance(self, steps):
        """Count `steps` updates that a compiled loop applied with coefficients(steps)."""
        self.t += steps

    def state_dict(self):
        """kind, t, the hyperparameters, and every state array under its own name."""
        return {"kind": self.kind, "t": self.t,
                **{name: getattr(self, name) for name in self.hyperparameters}, **self.state}

    def load_state_dict(self, state):
        if state.get("kind") != self.kind:
            raise ValueError(f"optimizer state is for {state.get('kind')!r}, not {self.kind!r}")
        hyperparameters = {name: _plain(state[name]) for name in self.hyperparameters
                           if name in state}
        self.__init__(self.model, **hyperparameters)  # the state arrays this optimizer needs
        missing = sorted(set(self.state) - set(state))
        if missing:
            raise ValueError(f"optimizer state lacks {missing}")
        for name in self.state:
            if state[name].shape != self.state[name].shape:
                raise ValueError(f"optimizer state has shape {state[name].shape}, model has "
                                 f"{self.model.weight.shape}")
            self.state[name] = np.array(state[name], dtype=self.model.weight.dtype)
        self.t = int(state["t"])


@functools.cache
def coefficient_dtype(coefficients, weight_dtype):
    """The record dtype of a Coefficients namedtuple class, every field of weight_dtype."""
    return np.dtype([(name, weight_dtype) for name in coefficients._fields])


def _plain(value):
    """A hyperparameter as the constructor takes it (JSON turns tuples into lists)."""
    return tuple(value) if isinstance(value, list) else value
