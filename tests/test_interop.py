"""npbigram/interop.py: bigram.py's state_dict in and out."""

import sys

import numpy as np
import pytest
from npbigram.interop import from_torch_state_dict, to_torch_state_dict

from helpers import model_with_weight, random_weight

# ----------------------------------------------------------------------------------------------
# PyTorch interop


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_loads_into_bigram_py_and_back(torch, torch_bigram, backend, dtype):
    model = model_with_weight(random_weight(65, dtype, 0), backend)
    state_dict = to_torch_state_dict(model)
    assert list(state_dict) == ["token_embedding_table.weight"]
    reference = torch_bigram(65).to({np.float32: torch.float32, np.float64: torch.float64}[dtype])
    reference.load_state_dict(state_dict)  # strict: exactly bigram.py's keys and shapes
    idx = np.random.default_rng(0).integers(0, 65, (4, 8))
    np.testing.assert_array_equal(reference(torch.from_numpy(idx))[0].detach().numpy(),
                                  model(idx)[0])

    exported = model.weight.copy()
    model.weight += 1.0  # the exported tensor is a copy
    np.testing.assert_array_equal(state_dict["token_embedding_table.weight"].numpy(), exported)

    back = from_torch_state_dict(reference.state_dict(), backend=backend)
    assert (back.vocab_size, back.dtype, back.backend) == (65, np.dtype(dtype), backend)
    np.testing.assert_array_equal(back.weight, exported)
    with torch.no_grad():
        reference.token_embedding_table.weight.zero_()  # the imported array is a copy
    assert np.any(back.weight != 0)


def test_state_dict_of_a_trained_torch_model_imports(torch, torch_bigram):
    torch.manual_seed(0)
    reference = torch_bigram(10)  # float32, with requires_grad parameters
    state = from_torch_state_dict(reference.state_dict(), dtype=np.float64, backend="numpy")
    assert state.dtype == np.float64
    np.testing.assert_array_equal(state.weight,
                                  reference.token_embedding_table.weight.detach().double().numpy())
    half = {"token_embedding_table.weight": torch.ones(3, 3, dtype=torch.float16)}
    assert from_torch_state_dict(half, dtype=np.float32, backend="numpy").weight.sum() == 9


@pytest.mark.parametrize("make_state, error, message", [
    (lambda t: {}, ValueError, r"missing \['token_embedding_table.weight'\]"),
    (lambda t: {"token_embedding_table.weight": t.zeros(2, 2), "lm_head.weight": t.zeros(2, 2)},
     ValueError, r"unexpected \['lm_head.weight'\]"),
    (lambda t: {"weight": t.zeros(2, 2)}, ValueError, "not a bigram.py state_dict"),
    (lambda t: {"token_embedding_table.weight": t.zeros(2, 3)}, ValueError,
     r"must be a square \(V, V\) table with V >= 1, got shape \(2, 3\)"),
    (lambda t: {"token_embedding_table.weight": t.zeros(4)}, ValueError, r"got shape \(4,\)"),
    (lambda t: {"token_embedding_table.weight": t.zeros(0, 0)}, ValueError, r"got shape \(0, 0\)"),
    (lambda t: {"token_embedding_table.weight": np.zeros((2, 2))}, TypeError,
     "must be a torch.Tensor, got ndarray"),
    (lambda t: {"token_embedding_table.weight": t.zeros(2, 2, dtype=t.float16)}, TypeError,
     r"has dtype torch.float16: pass dtype="),
])
def test_bad_state_dicts(torch, make_state, error, message):
    with pytest.raises(error, match=message):
        from_torch_state_dict(make_state(torch), backend="numpy")


def test_interop_without_torch_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    model = model_with_weight(np.zeros((2, 2)))
    with pytest.raises(ImportError, match="PyTorch interop needs torch: pip install torch"):
        to_torch_state_dict(model)
    with pytest.raises(ImportError, match="PyTorch interop needs torch"):
        from_torch_state_dict({})
