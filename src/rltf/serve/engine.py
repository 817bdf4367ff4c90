"""Requests from many clients, batched through one generation backend.

Handler threads submit jobs to a bounded queue and wait; one worker thread takes the oldest job
and, with it, every queued job that samples the same way (same parameters, no seed of its own), up
to ``max_batch`` sequences, and generates them in one backend call. A job with its own ``seed`` is
generated alone under that seed, so its answer does not depend on what else was queued. A full
queue refuses the job at once (the server answers 503), so a burst never grows memory without
bound and no request is silently dropped.
"""
from __future__ import annotations

import itertools
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from rltf.models.backend import Generation, GenerationBackend, SamplingParams


class QueueFull(Exception):
    """The engine's queue holds ``max_queue`` jobs already."""


@dataclass
class Job:
    prompts: list[list[int]]  # each prompt is answered ``n`` times
    n: int
    params: SamplingParams
    seed: int | None
    future: Future = field(default_factory=Future)

    @property
    def size(self) -> int:
        return len(self.prompts) * self.n


class BatchingEngine:
    def __init__(self, backend: GenerationBackend, max_queue: int = 256, max_batch: int = 32):
        self.backend, self.max_queue, self.max_batch = backend, max_queue, max_batch
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._seeds = itertools.count(1)
        self._closed = False
        self.batches = 0  # backend calls made (for tests and the load benchmark)
        self._worker = threading.Thread(target=self._run, name="rltf-serve-engine", daemon=True)
        self._worker.start()

    def submit(self, job: Job) -> Future:
        """Queue ``job``; its future resolves to one Generation per (prompt, sample). Raises QueueFull."""
        with self._cond:
            if self._closed:
                raise QueueFull("the server is shutting down")
            if len(self._jobs) >= self.max_queue:
                raise QueueFull(f"{self.max_queue} requests are queued already")
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=5)

    def _take_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            if not self._jobs:
                return None
            first = self._jobs.popleft()
            batch, size = [first], first.size
            if first.seed is None:
                for job in list(self._jobs):
                    if job.seed is None and job.params == first.params and size + job.size <= self.max_batch:
                        self._jobs.remove(job)
                        batch.append(job)
                        size += job.size
            return batch

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            flat = [p for job in batch for p in job.prompts for _ in range(job.n)]
            seed = batch[0].seed if batch[0].seed is not None else next(self._seeds)
            try:
                gens: list[Generation] = self.backend.generate_ids(flat, batch[0].params, seed=seed)
                self.batches += 1
            except BaseException as err:  # noqa: BLE001 - the waiting handlers answer 500 with the reason
                for job in batch:
                    job.future.set_exception(err)
                continue
            k = 0
            for job in batch:
                job.future.set_result(gens[k:k + job.size])
                k += job.size
