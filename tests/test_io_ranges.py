"""Frame ranges that worker processes read on their own give exactly the frames of a full read."""

from __future__ import annotations

import numpy as np
import pytest

import mlip.io
from mlip.io.ranges import index_extxyz, plan_ranges, read_range


@pytest.mark.parametrize("name", ["acac_train_300K_100.xyz", "rmd17_aspirin_train200.npz"])
def test_ranges_reproduce_a_full_read(data_dir, name):
    path = data_dir / name
    full = mlip.io.read(path)
    ranges = plan_ranges(path, max_frames=30, max_atoms=10**9)
    assert [r.stop - r.start for r in ranges][:2] == [30, 30] and ranges[-1].stop == len(full)
    pieces = [frame for r in ranges for frame in read_range(r)]
    assert len(pieces) == len(full)
    for a, b in zip(pieces, full):
        assert a.index == b.index and a.source == b.source and a.energy == b.energy
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.forces, b.forces)


def test_atom_limit_splits_ranges(data_dir):
    ranges = plan_ranges(data_dir / "acac_train_300K_100.xyz", max_frames=1000, max_atoms=15 * 7)
    assert {r.stop - r.start for r in ranges[:-1]} == {7}


def test_truncated_extxyz_names_frame(tmp_path):
    path = tmp_path / "cut.xyz"
    path.write_text("2\n\nH 0 0 0\nH 0 0 1\n3\n\nH 0 0 0\n")
    with pytest.raises(mlip.io.InvalidStructureError, match="frame 1.*ends inside a frame"):
        index_extxyz(path)


def test_error_in_a_range_names_the_frame_in_the_whole_file(tmp_path):
    good = '2\nenergy=-1.0 pbc="F F F"\nH 0 0 0\nH 0 0 0.74\n'
    path = tmp_path / "in.xyz"
    path.write_text(good * 5 + good.replace("-1.0", "nan"))
    last = plan_ranges(path, max_frames=4, max_atoms=100)[-1]
    with pytest.raises(mlip.io.InvalidStructureError, match="frame 5: energy is not finite"):
        read_range(last)
