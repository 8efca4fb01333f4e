"""npbigram/checks.py: the id check that stands before every kernel."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from npbigram.utils.checks import check_ids

any_text = st.text(st.characters(exclude_categories=()), min_size=1)  # lone surrogates too


# ----------------------------------------------------------------------------------------------
# check_ids


@given(ids=hnp.arrays(hnp.integer_dtypes() | hnp.unsigned_integer_dtypes(),
                      hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5)),
       vocab_size=st.integers(1, 300))
@settings(deadline=None, max_examples=200)
def test_check_ids_accepts_exactly_the_ids_in_range(ids, vocab_size):
    in_range = bool(np.all((ids >= 0) & (ids < vocab_size)))
    if in_range:
        checked = check_ids(ids, vocab_size, "idx")
        assert checked.dtype == np.int64
        np.testing.assert_array_equal(checked, ids)
    else:
        with pytest.raises(ValueError, match=rf"idx holds id -?\d+ at index \(\d+, \d+\), "
                                             rf"outside \[0, {vocab_size}\)"):
            check_ids(ids, vocab_size, "idx")
