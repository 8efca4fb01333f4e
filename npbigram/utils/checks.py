"""Argument checks shared by the package: each returns the checked value or raises a
TypeError/ValueError naming the argument; and the settings dataclasses' fields (setting) with
their one check (check_settings).

numba does no bounds checks, so every kernel's ids pass through check_ids first.
"""

import dataclasses
import math

import numpy as np

ID_DTYPE = np.int64  # token ids everywhere, like torch.long
DTYPES = ("float32", "float64")


def check_ids(ids, vocab_size, name, ndim=2, allow_empty=False):
    """Return `ids` as an int64 array after checking type, shape and range [0, vocab_size)."""
    if (type(ids) is np.ndarray and ids.dtype == ID_DTYPE and ids.flags.c_contiguous
            and ids.size and (ndim is None or ids.ndim == ndim)
            and int(ids.view(np.uint64).max()) < vocab_size):
        return ids  # already what a kernel takes, every id in range: one pass, as below
    if isinstance(ids, np.ndarray):
        arr = ids
    else:
        try:
            arr = np.asarray(ids)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{name} must be an integer array: {e}") from None
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        if arr.size == 0 and arr.dtype.kind == "f" and allow_empty:
            arr = arr.astype(ID_DTYPE)
        else:
            raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions (B, T), got shape {arr.shape}")
    if arr.size == 0:
        if allow_empty:
            return arr.astype(ID_DTYPE)
        raise ValueError(f"{name} is empty (shape {arr.shape}): a batch needs at least one token")
    # one pass: seen as unsigned 64-bit, a negative id is huge, so max < V means all are in [0, V)
    wide = arr.astype(np.int64 if arr.dtype.kind == "i" else np.uint64, copy=False)
    if int(wide.view(np.uint64).max()) >= vocab_size:
        lo, hi = int(arr.min()), int(arr.max())
        bad = lo if lo < 0 else hi
        where = np.unravel_index(int(np.argmax(arr == bad)), arr.shape)
        raise ValueError(
            f"{name} holds id {bad} at index {tuple(int(i) for i in where)}, "
            f"outside [0, {vocab_size}) for vocab_size {vocab_size}"
        )
    return np.ascontiguousarray(arr, dtype=ID_DTYPE)


def check_int(value, name):
    """An int (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def check_count(value, name, minimum=0):
    """An int >= minimum."""
    value = check_int(value, name)
    if value < minimum:
        bound = ">= 0" if minimum == 0 else f"at least {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_seed(seed, name="seed"):
    """None (fresh randomness) or an int >= 0, as np.random.default_rng takes it."""
    return None if seed is None else check_count(seed, name)


def check_number(value, name):
    """A real number (int or float, not bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def check_positive(value, name):
    """A finite number > 0."""
    value = check_number(value, name)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def check_non_negative(value, name):
    """A finite number >= 0."""
    value = check_number(value, name)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_choice(value, choices, name):
    """One of `choices` (any container of names)."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")
    return value


def nonfinite_rows(table, rows=None):
    """The rows of a (V,C) table (of `rows` only, when given) holding a NaN or an infinity, in
    order; checked a block of rows at a time, so no (V,C) temporary is made."""
    table = np.atleast_1d(table)
    table = table.reshape(len(table), -1)  # (V,C); any other shape by its first axis
    block = max(1, 2 ** 20 // max(1, table.shape[1]))  # 1 MB of booleans at a time
    if rows is None:  # slices of the table: views, not copies
        bad = [start + np.flatnonzero(~np.isfinite(table[start:start + block]).all(axis=1))
               for start in range(0, len(table), block)]
    else:
        rows = np.unique(rows)
        bad = [rows[i:i + block][~np.isfinite(table[rows[i:i + block]]).all(axis=1)]
               for i in range(0, len(rows), block)]
    return [int(row) for row in np.concatenate(bad or [np.zeros(0, np.int64)])]


def describe_nonfinite(table, rows, subject="the weights hold"):
    """'the weights hold non-finite values in rows 3, 17 (of 65)' (the first ten rows named)."""
    shown = ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10
                                              else "")
    return (f"{subject} non-finite values in row{'s' * (len(rows) > 1)} {shown} "
            f"(of {len(table)})")


def check_finite_table(table):
    """`table` (V,C) of weights, or a ValueError naming its rows that hold a NaN or an
    infinity."""
    rows = nonfinite_rows(table)
    if rows:
        raise ValueError(describe_nonfinite(table, rows))
    return table


def check_dtype(dtype):
    """float32 or float64, as a np.dtype."""
    dtype = np.dtype(dtype)
    if dtype.name not in DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class SettingError(ValueError):
    """A value that a setting cannot take, or that does not fit the data. `message(who)` is the
    text naming the setting as `who`; str() names it as the API does (block_size), and a front
    end names it as its user gave it (--block-size, or a key of a file)."""

    def __init__(self, name, message):
        super().__init__(message(name))
        self.name, self.message = name, message


class SettingTypeError(SettingError, TypeError):
    """A setting's value of the wrong type."""


def setting(default, help, **rules):
    """A field of a settings dataclass: its default, the help of its flag, and the rules of its
    values (choices; minimum, for a number; positive), which check_settings applies."""
    return dataclasses.field(default=default, metadata={"help": help, **rules})


KINDS = {bool: ((bool, np.bool_), "a bool"), int: ((int, np.integer), "an int"),
         float: ((int, float, np.integer, np.floating), "a number"), str: ((str,), "a string")}


def check_settings(settings):
    """Check every field of a settings dataclass against its type and rules (setting), and
    make each value a plain bool, int, float or str; a bad one is a SettingError naming it."""
    for field in dataclasses.fields(settings):
        value, kind, rules = getattr(settings, field.name), field.type, field.metadata
        if value is None and field.default is None:
            continue  # not set
        types, kind_name = KINDS[kind]
        if isinstance(value, (bool, np.bool_)) != (kind is bool) or not isinstance(value, types):
            raise SettingTypeError(field.name, lambda who: (
                f"{who} must be {kind_name}, got {type(value).__name__} {value!r}"))
        value = kind(value)
        if "choices" in rules and value not in rules["choices"]:
            raise SettingError(field.name, lambda who: (
                f"{who} must be one of {', '.join(rules['choices'])}, got {value!r}"))
        if rules.get("positive") and not (math.isfinite(value) and value > 0):
            raise SettingError(field.name, lambda who: (
                f"{who} must be a positive finite number, got {value}"))
        minimum = rules.get("minimum")
        if minimum is not None and not (math.isfinite(value) and value >= minimum):
            bound = (f"a finite number >= {minimum}" if kind is float else
                     f">= {minimum}" if minimum == 0 else f"at least {minimum}")
            raise SettingError(field.name, lambda who: f"{who} must be {bound}, got {value}")
        setattr(settings, field.name, value)
