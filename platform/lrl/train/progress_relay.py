"""Progress lines of Ray tasks, printed by the driver in order (one operation).

A line a task prints reaches the driver's console through Ray's log monitor, which runs on its
own time: the finetune stage's last evaluations were printed after its summary and after the next
stage had started ("finetune ug seed 0: step 90 ..." below "[lrl run] evaluate: starting"). The
tasks hand their lines to a small actor instead, and the driver prints them while it waits for
the tasks and once more before it says anything else, so every line comes before the summary.
The same on a cluster: the actor holds no CPU and the lines are a few per evaluation.
"""

from __future__ import annotations

import sys


class _Lines:
    """The actor: lines handed in by the tasks, taken out by the driver."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


class ProgressRelay:
    """Create in the driver; pass ``relay.sender()`` to the tasks; call ``print_new()`` in the
    driver while waiting and before printing a summary; ``close()`` at the end."""

    def __init__(self) -> None:
        import ray

        self._actor = ray.remote(num_cpus=0)(_Lines).remote()

    def sender(self) -> LineSender:
        return LineSender(self._actor)

    def print_new(self) -> None:
        """Print the lines handed in since the last call, in the order they came."""
        import ray

        for line in ray.get(self._actor.take.remote()):
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        import ray

        ray.kill(self._actor)


class LineSender:
    """What a task holds: ``send(line)`` returns once the actor has the line, so that a task
    that has returned has handed in all its lines."""

    def __init__(self, actor) -> None:
        self._actor = actor

    def send(self, line: str) -> None:
        import ray
        from ray.exceptions import RayActorError

        try:
            ray.get(self._actor.add.remote(line))
        except RayActorError:
            # The driver closed the relay: it stopped (Ctrl-C, SIGTERM) while this task ran. Raised,
            # each running task failed and Ray printed ~80 lines of "Unhandled error ...
            # ActorDiedError" after the stage's one-line stop message.
            pass


__all__ = ["ProgressRelay", "LineSender"]
