"""Frames to HDF5 shards in parallel, resumable, with a manifest (the library side of `mlip-preprocess`)."""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import threadpoolctl
from tqdm.auto import tqdm

from mlip.atomic_write import TMP_MARK
from mlip.checksum import file_sha256
from mlip.data.manifest import MANIFEST_NAME, build_manifest, write_json_atomic
from mlip.data.shards import is_complete_shard, read_shard_stats, shard_name, write_shard
from mlip.data.stats import StatSums
from mlip.folder_lock import exclusive_folder, remove_if_unused
from mlip.io import Frame, InvalidStructureError, ReadOptions, expand_paths, iread
from mlip.worker_lifetime import end_with_parent
from mlip.io.ranges import FrameRange, plan_ranges, read_range, splittable
from mlip.io.read import ALIASES

DEFAULT_CUTOFF = 5.0  # Å, where no cutoff is given (mlip-preprocess, mlip-train; MACE's default r_max)

STATE_NAME = ".preprocess.json"


class PreprocessConflictError(RuntimeError):
    """The output folder holds shards from a run with other inputs or settings."""


def chunk_frames(frames: Iterable[Frame], max_frames: int, max_atoms: int) -> Iterator[list[Frame]]:
    """Group frames into shards of at most `max_frames` frames and (unless one frame is larger) `max_atoms` atoms."""
    chunk: list[Frame] = []
    atoms = 0
    for frame in frames:
        if chunk and (len(chunk) >= max_frames or atoms + frame.n_atoms > max_atoms):
            yield chunk
            chunk, atoms = [], 0
        chunk.append(frame)
        atoms += frame.n_atoms
    if chunk:
        yield chunk


def plan_tasks(files: Sequence[Path], shard_size: int, shard_atoms: int,
               read_options: dict[str, Any]) -> Iterator[FrameRange | list[Frame]]:
    """One task per shard, in input order: a `FrameRange` that a worker reads itself (extended
    XYZ, npz), or a list of frames read here (formats that can only be streamed)."""
    forced = read_options.get("format")
    forced = ALIASES.get(forced, forced)
    for file in files:
        tasks = (plan_ranges(file, shard_size, shard_atoms, forced) if splittable(file, forced)
                 else chunk_frames(iread(file, **read_options), shard_size, shard_atoms))
        planned = 0
        for task in tasks:
            planned += 1
            yield task
        if not planned:
            raise InvalidStructureError("holds no structures (zero frames); remove it from the inputs", str(file))


def run_task(task: FrameRange | list[Frame], path: Path, cutoff: float, min_distance: float | None,
             read_options: dict[str, Any]) -> StatSums:
    """Read the task's frames if needed, then build graphs and write the shard.

    Isolated-atom frames (config_type IsolatedAtom, MACE's convention) are not trained on: their
    energies go into the statistics (the manifest's `isolated_atom_energies`, for `e0s: isolated`).
    """
    frames = read_range(task, **read_options) if isinstance(task, FrameRange) else task
    isolated = [frame for frame in frames if frame.is_isolated_atom and frame.energy is not None]
    kept = [frame for frame in frames if not (frame.is_isolated_atom and frame.energy is not None)]
    return write_shard(kept, path, cutoff, min_distance) + StatSums.from_isolated_atoms(isolated)


def input_fingerprint(files: Sequence[Path], settings: dict[str, Any]) -> dict[str, Any]:
    """What must match for a previous partial run to be resumed (JSON-normalised)."""
    return json.loads(json.dumps({
        "inputs": [{"path": str(f.resolve()), "bytes": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns} for f in files],
        "settings": settings,
    }))


def _clean_temporaries(out: Path) -> None:
    for stale in out.glob(f"*{TMP_MARK}*"):
        stale.unlink(missing_ok=True)


def _prepare_output(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    state = out / STATE_NAME
    previous = json.loads(state.read_text()) if state.exists() else None
    has_shards = any(out.glob("shard_*.h5"))
    if overwrite:
        for old in itertools.chain(out.glob("shard_*.h5"), [out / MANIFEST_NAME, state]):
            old.unlink(missing_ok=True)
    elif previous != fingerprint and (has_shards or (out / MANIFEST_NAME).exists()):
        raise PreprocessConflictError(
            f"'{out}' holds shards made from other inputs or settings; pass --overwrite to replace them "
            "or choose another --out"
        )
    _clean_temporaries(out)
    write_json_atomic(state, fingerprint)


def preprocess(
    inputs: Sequence[str | Path],
    out: str | Path,
    cutoff: float,
    shard_size: int = 2000,
    shard_atoms: int = 250_000,
    workers: int | None = None,
    min_distance: float | None = 0.1,
    overwrite: bool = False,
    progress: bool = True,
    read_options: ReadOptions | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read `inputs` (files or folders), write graph shards and `manifest.json` to `out`.

    Shards are written by `workers` processes (default: all cores), each to a temporary
    file renamed into place when complete. Rerunning after an interruption keeps the
    finished shards and writes only the missing ones. The folder is locked while this runs: a
    second run into it is refused (`FolderInUseError`). Returns the manifest.
    """
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff} Å")
    skipped: list[Path] = []
    files = expand_paths(inputs, skipped)  # missing or unknown inputs are refused before the folder is touched
    if skipped:
        names = ", ".join(str(p) for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        print(f"mlip-preprocess: skipped {len(skipped)} file(s) of unknown format: {names}", file=sys.stderr)
    created = not Path(out).exists()
    try:
        with exclusive_folder(out, "mlip-preprocess"):
            return _preprocess(files, Path(out), cutoff, shard_size, shard_atoms, workers, min_distance, overwrite,
                               progress, read_options)
    except BaseException:
        if created:
            remove_if_unused(out)  # a refused first run leaves no empty folder behind
        raise


def _preprocess(files: list[Path], out: Path, cutoff: float, shard_size: int, shard_atoms: int,
                workers: int | None, min_distance: float | None, overwrite: bool, progress: bool,
                read_options: ReadOptions | Mapping[str, Any] | None) -> dict[str, Any]:
    start = time.perf_counter()
    read_options = ReadOptions.of(read_options).as_kwargs()  # validated once, then passed to every reader
    out = Path(out)
    settings = {"cutoff": float(cutoff), "shard_size": shard_size, "shard_atoms": shard_atoms,
                "min_distance": min_distance, "read_options": read_options}
    fingerprint = input_fingerprint(files, settings)
    _prepare_output(out, fingerprint, overwrite)
    workers = workers or os.cpu_count() or 1
    tasks = plan_tasks(files, shard_size, shard_atoms, read_options)
    results: dict[int, StatSums] = {}
    bar = tqdm(unit=" struct", desc="preprocess", disable=not progress, dynamic_ncols=True)

    def record(index: int, stats: StatSums) -> None:
        results[index] = stats
        bar.update(stats.n_frames)
        elapsed = max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(shards=len(results), edges_per_s=f"{sum(s.n_edges for s in results.values()) / elapsed:.3g}")

    try:
        if workers == 1:
            _run_serial(tasks, out, cutoff, min_distance, read_options, record)
        else:
            _run_parallel(tasks, out, cutoff, min_distance, read_options, workers, record)
    finally:
        bar.close()
        _clean_temporaries(out)
    total = sum(results.values(), StatSums())
    shards = [{"file": shard_name(i), "n_frames": s.n_frames, "n_atoms": s.n_atoms, "n_edges": s.n_edges,
               "sha256": file_sha256(out / shard_name(i))}
              for i, s in sorted(results.items())]
    manifest = build_manifest(shards, total, float(cutoff), fingerprint, time.perf_counter() - start)
    write_json_atomic(out / MANIFEST_NAME, manifest)
    return manifest


def _finished(out: Path, index: int) -> StatSums | None:
    path = out / shard_name(index)
    return read_shard_stats(path) if path.exists() and is_complete_shard(path) else None


def _run_serial(tasks, out: Path, cutoff: float, min_distance, read_options, record) -> None:
    for index, task in enumerate(tasks):
        stats = _finished(out, index)
        if stats is None:
            stats = run_task(task, out / shard_name(index), cutoff, min_distance, read_options)
        record(index, stats)


def _worker_init(parent_pid: int) -> None:
    # Ctrl-C goes to the parent, which shuts the pool down; workers must not die half-way on their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with_parent(parent_pid)  # but they end when the parent is killed
    # One BLAS/OpenMP thread per worker: idle OpenBLAS threads spin and halve throughput otherwise.
    threadpoolctl.threadpool_limits(1)


def _run_parallel(tasks, out: Path, cutoff: float, min_distance, read_options, workers: int, record) -> None:
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pending: dict[cf.Future, int] = {}
    with cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                initargs=(os.getpid(),)) as pool:
        try:
            for index, task in enumerate(tasks):
                stats = _finished(out, index)
                if stats is not None:
                    record(index, stats)
                    continue
                future = pool.submit(run_task, task, out / shard_name(index), cutoff, min_distance, read_options)
                pending[future] = index
                while len(pending) >= 2 * workers:
                    _collect(pending, record, cf.FIRST_COMPLETED)
            while pending:
                _collect(pending, record, cf.FIRST_COMPLETED)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _collect(pending: dict[cf.Future, int], record, how: str) -> None:
    done, _ = cf.wait(list(pending), return_when=how)
    for future in done:
        index = pending.pop(future)
        record(index, future.result())
