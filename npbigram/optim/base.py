"""What an optimizer is: hyperparameters, a step counter t, state arrays, and step().

A subclass (one module each) sets `kind` and writes three things beside its formula:
`check_hyperparameters(...)`, whose signature gives the hyperparameters' names and torch's
defaults and which returns them checked; `state_names(hyperparameters)`, the (V,C) arrays the
update carries from step to step; and `update(weight, g)`, the formula of step t in NumPy.
The numba engine runs the same formula compiled (npbigram/engine/kernels.py (update_row)).
"""

import functools
import inspect

import numpy as np


class Optimizer:
    kind = None

    def __init__(self, model, *args, **kwargs):
        """Optimizer(model, **hyperparameters): those of check_hyperparameters, its defaults
        where not given."""
        self._start(model, self.check_hyperparameters(*args, **kwargs))

    @classmethod
    def from_checked(cls, model, hyperparameters):
        """An optimizer of hyperparameters already checked, every one of them (a TrainConfig's
        optimizer_hyperparameters()): not checked again."""
        optimizer = cls.__new__(cls)
        optimizer._start(model, hyperparameters)
        return optimizer

    def _start(self, model, hyperparameters):
        self.model = model
        self.t = 0  # steps taken
        for name, value in hyperparameters.items():
            setattr(self, name, value)  # self.lr, ...
        # name -> array (V,C): everything the update carries from step to step
        self.state = {name: np.zeros_like(model.weight)
                      for name in self.state_names(hyperparameters)}

    @classmethod
    @functools.cache
    def hyperparameter_names(cls):
        """The names check_hyperparameters takes, in order."""
        return tuple(inspect.signature(cls.check_hyperparameters).parameters)

    def hyperparameters(self):
        """Their values now, in that order."""
        return tuple(getattr(self, name) for name in self.hyperparameter_names())

    def step(self):
        """One update of model.weight from model.grad: step t + 1 of the formula (the numba
        engine runs its compiled twin, which gives the same bits)."""
        weight, grad = self.model.weight, self.model.grad
        if grad is None:
            raise RuntimeError("no gradient: call model.backward() before opt.step()")
        self.t += 1
        compiled_update = self.model.engine.compiled_update
        if compiled_update is None:
            self.update(weight, grad)
        else:
            compiled_update(self, weight, grad)

    def state_dict(self):
        """kind, t, the hyperparameters, and every state array under its own name."""
        return {"kind": self.kind, "t": self.t,
                **{name: getattr(self, name) for name in self.hyperparameter_names()},
                **self.state}

    def load_state_dict(self, state):
        if state.get("kind") != self.kind:
            raise ValueError(f"optimizer state is for {state.get('kind')!r}, not {self.kind!r}")
        hyperparameters = {name: _plain(state[name]) for name in self.hyperparameter_names()
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


def _plain(value):
    """A hyperparameter as the constructor takes it (JSON turns tuples into lists)."""
    return tuple(value) if isinstance(value, list) else value
