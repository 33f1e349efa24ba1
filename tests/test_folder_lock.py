"""Exclusive output folders: a second writer is refused at once; a killed writer leaves no stale lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from filelock import FileLock

from mlip.data.cli import main as preprocess_main
from mlip.data.preprocess import preprocess
from mlip.folder_lock import LOCK_NAME, FolderInUseError, exclusive_folder


def test_second_preprocessing_run_into_a_folder_is_refused(data_dir, tmp_path, capsys):
    out = tmp_path / "shards"
    with exclusive_folder(out, "a test holding it"):
        with pytest.raises(FolderInUseError, match="in use by another process"):
            preprocess([data_dir / "acac_test_MD_300K_50.xyz"], out, cutoff=4.0, workers=1, progress=False)
        code = preprocess_main([str(data_dir / "acac_test_MD_300K_50.xyz"), "--cutoff", "4", "--out", str(out),
                                "--quiet"])
        assert code == 2 and "in use by another process" in capsys.readouterr().err
    assert not list(out.glob("shard_*"))  # the refused runs wrote nothing
    manifest = preprocess([data_dir / "acac_test_MD_300K_50.xyz"], out, cutoff=4.0, workers=1, progress=False)
    assert manifest["n_structures"] == 50  # free again once the holder is done


def test_lock_of_a_killed_process_is_released(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", f"from filelock import FileLock; import time; "
                               f"lock = FileLock(r'{tmp_path / LOCK_NAME}'); lock.acquire(); print('held', flush=True); "
                               f"time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(FolderInUseError):
        with exclusive_folder(tmp_path, "test"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    deadline = time.time() + 5
    while True:
        try:
            with exclusive_folder(tmp_path, "test"):
                break
        except FolderInUseError:
            assert time.time() < deadline
            time.sleep(0.05)
    assert not FileLock(tmp_path / LOCK_NAME).is_locked
