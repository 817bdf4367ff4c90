"""An endless, resumable stream of training problems."""
from __future__ import annotations

import random
from typing import Iterator

from rltf.tasks.base import Problem, Task


class ProblemStream:
    """Train-split problems in a fixed order for ``seed``; finite tasks restart with a new shuffle
    each epoch. ``position`` counts problems taken, so a resumed run can skip exactly that many."""

    def __init__(self, task: Task, seed: int, position: int = 0):
        self.task, self.seed, self.position = task, seed, 0
        self._iter = self._generate()
        self.skip(position)

    def _generate(self) -> Iterator[Problem]:
        epoch = 0
        while True:
            empty = True
            for problem in self.task.iter_split("train", self.seed * 1000 + epoch):
                empty = False
                yield problem
            if empty:
                raise ValueError(f"task {self.task.name} has no training problems")
            epoch += 1

    def skip(self, n: int) -> None:
        for _ in range(n):
            next(self._iter)
            self.position += 1

    def take(self, n: int) -> list[Problem]:
        out = [next(self._iter) for _ in range(n)]
        self.position += n
        return out


class RecordStream:
    """Annotation records in a shuffled order for ``seed``, reshuffled each epoch; ``position``
    counts records taken, so a resumed run skips exactly that many (as :class:`ProblemStream`)."""

    def __init__(self, records: list[dict], seed: int, position: int = 0):
        if not records:
            raise ValueError("no records to train on")
        self.records, self.seed, self.position = records, seed, position

    def take(self, n: int) -> list[dict]:
        out = []
        for k in range(self.position, self.position + n):
            epoch, index = divmod(k, len(self.records))
            order = list(range(len(self.records)))
            random.Random(self.seed * 1000 + epoch).shuffle(order)
            out.append(self.records[order[index]])
        self.position += n
        return out
