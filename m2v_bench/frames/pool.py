"""Decoder processes: frames decoded beside the model without sharing its GIL.

PyAV gives up the GIL inside each libav call and takes it back between frames, so a decoder thread beside a thread
that keeps the GIL busy (the model's: ``generate`` on a GPU is Python launching kernels) waits for the GIL at every
frame: 43-52x slower than alone (``bench/eval.py``). A :class:`DecodePool` decodes in worker processes of its own.

The workers are plain ``python -c`` processes that import the decoders only. multiprocessing's spawn and forkserver
would import the caller's main module again in every worker (lmms-eval's CLI: 6 s and 1 GB each), and fork is unsafe
beside the caller's threads and CUDA. A worker reads pickled requests on its stdin and answers on its stdout, one
clip at a time; it exits when its stdin closes, so a caller that is killed leaves no worker behind.

Frames come back through one shared-memory block per worker, which the caller owns (its resource tracker unlinks
it, should the caller die) and copies out of: a block is written many times, a fresh one would cost a page fault
per 4 KiB, 10x the copy. A clip that does not fit its worker's block comes back through the pipe, and the block
is replaced by one that fits. Where /dev/shm has no room (Docker gives containers 64 MB) frames always come through
the pipe.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import traceback
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import numpy as np

from m2v_bench.errors import M2VError
from m2v_bench.frames.sampler import FrameSampler
from m2v_bench.frames.views import Frames, FrameView, log_fallback
from m2v_bench.settings import available_cores

_SERVE = """\
import importlib.util, os, sys
root = {root!r}
spec = importlib.util.find_spec("m2v_bench")
if spec is None or not spec.origin or os.path.dirname(os.path.dirname(os.path.realpath(spec.origin))) != root:
    sys.path.insert(0, root)  # the caller's m2v_bench (a checkout on a path it added), not another one
from m2v_bench.frames.pool import serve
serve()
"""
"""A worker's command line: it imports the m2v_bench the caller runs. The path is only touched when another
m2v_bench (or none) would be found first, so an installed one leaves the standard library ahead of site-packages."""


def source_root() -> str:
    """The folder that holds the caller's ``m2v_bench`` package (a checkout's root or site-packages): this module
    is ``m2v_bench/frames/pool.py``, two levels below it."""
    return os.path.realpath(Path(__file__).resolve().parents[2])


def _room_in_shared_memory(nbytes: int) -> bool:
    """Whether /dev/shm can hold ``nbytes`` more, twice over: a write into a mapping of a full tmpfs kills the
    writer with SIGBUS."""
    if not hasattr(os, "statvfs") or not os.path.isdir("/dev/shm"):
        return sys.platform != "linux"  # elsewhere POSIX shared memory is not a size-limited file system
    stat = os.statvfs("/dev/shm")
    return stat.f_bavail * stat.f_frsize > 2 * nbytes


# -------------------------------------------------------------------------------------------- worker side


def serve() -> None:
    """A worker's loop: the caller's sampler first, then a request on stdin and its answer on stdout, until stdin
    closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's; it closes our stdin
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the answers
    # The caller owns the blocks. Before Python 3.13 attaching one registers it with this process's resource
    # tracker, which would unlink the caller's block when this worker exits (bpo-38119).
    resource_tracker.register = resource_tracker.unregister = lambda name, rtype: None
    attached: dict[str, shared_memory.SharedMemory] = {}
    try:
        sampler = pickle.load(sys.stdin.buffer)
    except EOFError:
        return
    while True:
        try:
            request = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        answer = _answer(sampler, request, attached)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception of a type that does not pickle: its text
            data = pickle.dumps(("raise", None, answer[2] if answer[0] == "raise" else traceback.format_exc()))
        try:
            answers.write(data)
            answers.flush()
        except BrokenPipeError:  # the caller stopped listening (closed mid-request): nothing left to do
            return


def _answer(sampler: FrameSampler, request, attached: dict[str, shared_memory.SharedMemory]):
    kind, cwd, source, view, block, capacity = request
    try:
        if os.getcwd() != cwd:  # relative paths and cache folders mean what they mean to the caller
            os.chdir(cwd)
        if kind == "fill":
            if sampler.is_cached(source, view):
                return ("cached",)
            frames = sampler.take(source, view)
            return ("decoded", frames.indices, frames.fallback)
        frames = sampler.take(source, view)
    except Exception as exc:  # raised again in the caller, as it is
        return ("raise", exc, traceback.format_exc())
    array = frames.array
    where: tuple = ("inline", array)
    if block is not None and array.nbytes <= capacity:
        if block not in attached:
            for old in attached.values():
                old.close()
            attached.clear()
            attached[block] = shared_memory.SharedMemory(name=block)
        np.ndarray(array.shape, array.dtype, buffer=attached[block].buf)[...] = array
        where = ("shared", array.shape, array.dtype.str)
    return ("frames", where, frames.indices, frames.total_frames, frames.fallback, frames.meta, frames.fps)


# -------------------------------------------------------------------------------------------- caller side


class _Worker:
    """One decoder process and the shared-memory block it writes into."""

    def __init__(self, sampler: FrameSampler) -> None:
        serve = _SERVE.format(root=source_root())
        self.process = subprocess.Popen([sys.executable, "-c", serve], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.block: shared_memory.SharedMemory | None = None
        self.answered = False
        with contextlib.suppress(OSError):  # a worker that is already gone is found out at its first request
            pickle.dump(sampler, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()

    def ask(self, kind: str, source: str, view: FrameView):
        block = self.block
        request = (kind, os.getcwd(), source, view, block and block.name, block.size if block else 0)
        pickle.dump(request, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.flush()
        answer = pickle.load(self.process.stdout)
        self.answered = True
        return answer

    def frames_of(self, answer) -> np.ndarray:
        """The array of a "frames" answer, copied out of the block; a block too small for it is replaced."""
        where = answer[1]
        if where[0] == "shared":
            _, shape, dtype = where
            return np.array(np.ndarray(shape, np.dtype(dtype), buffer=self.block.buf))
        array = where[1]
        outgrown = self.block is None or array.nbytes > self.block.size
        if array.nbytes and outgrown and _room_in_shared_memory(array.nbytes):
            self.free_block()
            with contextlib.suppress(OSError):  # no block to be had (limits, a full /dev/shm): the pipe it stays
                self.block = shared_memory.SharedMemory(create=True, size=array.nbytes)
        return array

    def free_block(self) -> None:
        if self.block is not None:
            with contextlib.suppress(BufferError):  # a thread still reading it (the pool closed under it)
                self.block.close()
            self.block.unlink()
            self.block = None

    def hang_up(self) -> None:
        """Close the pipes: the worker exits once its current clip is done."""
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    def wait(self) -> None:
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.free_block()


def _stop_all(workers: list[_Worker], lock: threading.Lock, state: dict) -> None:
    with lock:
        state["closed"] = True
        stopping = list(workers)
        workers.clear()
    for worker in stopping:  # all hung up first, so they wind down together
        worker.hang_up()
    for worker in stopping:
        worker.wait()


def _start_failure(code: int) -> M2VError:
    return M2VError(f"a decoder process failed to start (exit code {code}; its error is above, on stderr): "
                    f"{sys.executable} cannot run m2v_bench's decoders")  # fmt: skip


class DecodePool:
    """A :class:`FrameSampler` whose clips are decoded in ``workers`` decoder processes (see the module's docstring).
    ``sample`` may be called from many threads at once: each call takes an idle worker, and waits for one when all
    are busy. A worker that dies is replaced; the clip it was decoding fails with an error that says so."""

    def __init__(self, sampler: FrameSampler, workers: int):
        if workers < 1:
            raise ValueError(f"a decode pool needs at least 1 worker, got {workers}")
        self.sampler = sampler
        self.workers: list[_Worker] = [_Worker(sampler) for _ in range(workers)]  # they start while we go on
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for worker in self.workers:
            self._idle.put(worker)
        self._lock = threading.Lock()
        self._state = {"closed": False}
        # at close, collection or exit
        self._finalizer = weakref.finalize(self, _stop_all, self.workers, self._lock, self._state)

    @property
    def cache_dir(self) -> Path | None:
        return self.sampler.cache_dir

    def sample(self, source: str | os.PathLike[str], view: FrameView) -> Frames:
        """The view of one clip, as :meth:`FrameSampler.sample` gives it."""
        array, answer = self._ask("take", source, view)
        _, _, indices, total, fallback, meta, fps = answer
        frames = Frames(array, indices, total, fallback, meta, fps)
        log_fallback(source, view, frames)
        return frames

    def fill(self, source: str | os.PathLike[str], view: FrameView) -> tuple[str, str | None]:
        """Put one clip's view into the sampler's cache: ("cached" | "decoded" | "failed", problem). A clip that
        cannot be decoded, or whose decoder process dies, is "failed"."""
        try:
            _, answer = self._ask("fill", source, view)
        except M2VError as exc:
            return "failed", str(exc)
        if answer[0] == "decoded":
            log_fallback(source, view, Frames(np.empty((0,)), answer[1], 0, answer[2]))
        return answer[0], None

    def _take(self) -> _Worker:
        while True:
            if self._state["closed"]:
                raise M2VError("this decode pool is closed; make a new one")
            try:
                worker = self._idle.get(timeout=0.2)
            except queue.Empty:
                continue
            code = worker.process.poll()
            if code is None:
                return worker
            self._replace(worker)  # it died while idle (killed, out of memory): a fresh one takes its place
            if code > 0 and not worker.answered:
                raise _start_failure(code)

    def _ask(self, kind: str, source, view: FrameView):
        worker = None
        try:
            worker = self._take()
            answer = worker.ask(kind, str(source), view)
            array = worker.frames_of(answer) if answer[0] == "frames" else None
        except BaseException as exc:
            if worker is None:
                raise
            dead = isinstance(exc, (EOFError, OSError, pickle.UnpicklingError))
            try:  # a closed pipe: the worker is exiting, and its exit code tells why
                code = worker.process.wait(timeout=5) if dead else worker.process.poll()
            except subprocess.TimeoutExpired:
                code = None
            answered = worker.answered
            self._replace(worker)  # interrupted or dead: its pipe is out of step either way
            if self._state["closed"]:
                raise M2VError(f"{source}: the decode pool was closed while the clip was being decoded") from None
            if not dead:
                raise
            if code is not None and code > 0 and not answered:
                raise _start_failure(code) from None
            raise M2VError(f"{source}: a decoder process died (killed, out of memory, or a crash in the decoder) "
                           "while this clip was being decoded; run again (m2v: decode_workers=0 decodes in the "
                           "model's process)") from None  # fmt: skip
        self._idle.put(worker)
        if answer[0] == "raise":
            _, error, text = answer
            if error is None:
                raise RuntimeError(f"{source}: the decoder process failed:\n{text}")
            if not isinstance(error, M2VError):  # an internal error keeps the worker's traceback
                error.add_note(f"raised in a decoder process:\n{text}")
            raise error
        return array, answer

    def _replace(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.wait()
        with self._lock:
            if self._state["closed"] or worker not in self.workers:
                return
            fresh = _Worker(self.sampler)
            self.workers[self.workers.index(worker)] = fresh
        self._idle.put(fresh)

    def close(self) -> None:
        """Stop the workers (each exits once its current clip is done) and free the shared memory."""
        self._finalizer()


@dataclass
class CacheFill:
    """What :func:`fill_cache` did."""

    decoded: int = 0
    already_cached: int = 0
    failed: list[tuple[str, FrameView, str]] = field(default_factory=list)
    """(clip, view, problem) of each clip that could not be decoded."""


def fill_cache(
    sources: Iterable[str | os.PathLike[str]],
    views: Iterable[FrameView],
    cache_dir: str | os.PathLike[str],
    jobs: int | None = None,
    progress: bool = False,
) -> CacheFill:
    """Decode every view of every clip into the frame cache on ``jobs`` decoder processes (default: every core;
    each clip on one decoder), skipping what is already there: a run that was stopped resumes where it was. A clip
    that cannot be decoded is reported in the result, and the others go on."""
    from tqdm import tqdm  # imported here: every decoder worker imports this module, and none shows progress

    views = list(dict.fromkeys(views))
    work = [(str(source), view) for source in dict.fromkeys(map(str, sources)) for view in views]
    result = CacheFill()
    if not work:
        return result
    workers = max(1, min(jobs or available_cores(), len(work)))
    pool = DecodePool(FrameSampler(cache_dir=cache_dir, threads=1), workers)
    try:
        with ThreadPoolExecutor(max_workers=workers) as threads:
            outcomes = threads.map(lambda item: pool.fill(*item), work)
            for (source, view), (outcome, problem) in tqdm(
                zip(work, outcomes, strict=True), total=len(work), desc="frames", unit="clip", disable=not progress
            ):
                if outcome == "failed":
                    result.failed.append((source, view, problem))
                elif outcome == "cached":
                    result.already_cached += 1
                else:
                    result.decoded += 1
    finally:
        pool.close()
    return result
