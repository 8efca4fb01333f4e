"""npbigram/files.py: atomic writes."""


import pytest
from hypothesis import strategies as st
from npbigram.files import atomic_output

any_text = st.text(st.characters(exclude_categories=()), min_size=1)  # lone surrogates too


def test_atomic_output_replaces_the_file_only_on_success(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(dest) as f:
            f.write(b"half of the new")
            raise RuntimeError("boom")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with atomic_output(dest) as f:
        f.write(b"new")
    assert dest.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
