"""Contenders that run in another process.

- :class:`Worker`: a long-lived child process that builds the operation once and times it
  on request, so it alternates with in-process contenders A B A B like any other. This is
  how ``tensorflow_hub`` + ``tf_keras`` run: they need ``TF_USE_LEGACY_KERAS=1``, which
  cannot share a process with Keras 3.
- :class:`ColdProcess`: a fresh process per run, timed from spawn until it prints its
  first output (load-time cases, the CLI).

The worker protocol is one JSON object per line on the child's stdin and on a private copy
of its stdout (the child points fd 1 at stderr, so stray prints cannot corrupt it)::

    -> {"op": "start", "target": "pkg.module:factory", "params": {...}, "inner": 1}
    <- {"ok": true}            or {"ok": false, "error": "...", "not_yet": false}
    -> {"op": "measure"}
    <- {"ok": true, "seconds": 0.26, "cpu": 0.5, "extras": {}}
    -> {"op": "stop"}

Example:
    >>> w = Worker("echo", "benchmarks._worker:noop", role="peer")
    >>> w.start(); s = w.measure(); w.stop()
    >>> s.seconds >= 0
    True
"""

from __future__ import annotations

import collections
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from benchmarks._harness import Contender, NotYet, Sample

__all__ = ["FIRST_OUTPUT", "LEGACY_ENV", "ColdProcess", "Worker", "child_env"]

ROOT = Path(__file__).resolve().parent.parent
#: The environment under which ``tensorflow_hub.KerasLayer`` works: legacy Keras 2.
LEGACY_ENV: dict[str, str] = {"TF_USE_LEGACY_KERAS": "1"}
#: The line prefix a cold process prints once its first output is computed.
FIRST_OUTPUT = "@@first-output"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: ours, quiet TF, ``benchmarks`` importable, plus ``extra``."""
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


class _Tail:
    """Copies a child's stream to ours while keeping its last lines for error messages."""

    def __init__(self, stream: IO[str], sink: Callable[[str], None] | None) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=30)
        self._stream, self._sink = stream, sink
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))
            if self._sink is not None:
                self._sink(line.rstrip("\n"))

    def text(self) -> str:
        self._thread.join(timeout=2)
        return "\n".join(self.lines)


class Worker(Contender):
    """Runs ``target(**params)`` in a child process and times the operation it returns.

    Args:
        name: see :class:`~benchmarks._harness.Contender`.
        target: ``"module:function"``; the function is called once in the child with
            ``params`` and returns the operation (a callable) to time. It may raise
            :class:`~benchmarks._harness.NotYet`.
        params: JSON-able keyword arguments for ``target``.
        env: extra environment variables for the child (e.g. :data:`LEGACY_ENV`).
        inner: calls per sample; the sample reports the time per call.
        timeout_s: how long one request may take before the child is killed.
        **kwargs: ``role``, ``items``, ``nbytes``, ``expect_failure``.
    """

    def __init__(
        self,
        name: str,
        target: str,
        params: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        inner: int = 1,
        timeout_s: float = 900.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.target, self.params, self.env = target, dict(params or {}), dict(env or {})
        self.inner, self.timeout_s = inner, timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: _Tail | None = None

    def _request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise RuntimeError(f"{self.name}: worker is not running")
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        timer = threading.Timer(self.timeout_s, proc.kill)
        timer.start()
        try:
            line = proc.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            proc.wait(timeout=10)
            tail = self._stderr.text() if self._stderr else ""
            raise RuntimeError(
                f"{self.name}: worker exited with status {proc.returncode}: "
                f"{tail.splitlines()[-1] if tail else 'no output'}"
            )
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            error = str(reply.get("error", "unknown error"))
            if reply.get("not_yet"):
                raise NotYet(error)
            raise RuntimeError(error)
        return reply

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=child_env(self.env),
        )
        assert self._proc.stderr is not None  # set by stderr=PIPE above
        self._stderr = _Tail(self._proc.stderr, None)
        self._request(
            {"op": "start", "target": self.target, "params": self.params, "inner": self.inner}
        )

    def measure(self) -> Sample:
        reply = self._request({"op": "measure"})
        return Sample(float(reply["seconds"]), reply.get("cpu"), dict(reply.get("extras", {})))

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None and proc.poll() is None:
                proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                proc.stdin.flush()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


class ColdProcess(Contender):
    """Times a fresh process from spawn until it prints :data:`FIRST_OUTPUT`, or exits.

    With ``until="marker"``, the child may put a JSON object after the marker; its ``cpu``
    (seconds of CPU the child used up to that point) becomes the sample's CPU time and
    any other keys its extras. With ``until="exit"`` (a command line tool), the run ends
    when the process exits, which must be with status 0; its CPU time is the child's.
    With ``until="reported"``, the child times the work itself (say, the first call after
    its imports) and puts ``seconds`` in the marker's JSON: that is the sample's time.

    Args:
        name: see :class:`~benchmarks._harness.Contender`.
        argv: the command, e.g. ``[sys.executable, "-m", "benchmarks.peers._coldstart", ...]``.
        env: extra environment variables.
        precheck: called by ``start`` in this process; raise
            :class:`~benchmarks._harness.NotYet` from it when the feature is missing.
        until: ``"marker"``, ``"exit"`` or ``"reported"``.
        timeout_s: how long one run may take.
        **kwargs: ``role``, ``items``, ``nbytes``, ``expect_failure``.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        precheck: Callable[[], object] | None = None,
        until: Literal["marker", "exit", "reported"] = "marker",
        timeout_s: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.argv, self.env, self.precheck = list(argv), dict(env or {}), precheck
        self.until, self.timeout_s = until, timeout_s

    def start(self) -> None:
        if self.precheck is not None:
            self.precheck()

    def measure(self) -> Sample:
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=child_env(self.env),
        )
        assert proc.stdout is not None  # PIPE above
        assert proc.stderr is not None  # PIPE above
        stderr = _Tail(proc.stderr, None)
        timer = threading.Timer(self.timeout_s, proc.kill)
        timer.start()
        try:
            seconds: float | None = None
            payload: dict[str, Any] = {}
            for line in proc.stdout:
                if self.until != "exit" and line.startswith(FIRST_OUTPUT):
                    seconds = time.perf_counter() - t0
                    rest = line[len(FIRST_OUTPUT) :].strip()
                    payload = json.loads(rest) if rest else {}
                    if self.until == "reported":
                        seconds = float(payload.pop("seconds"))
                    break
            proc.stdout.read()
            proc.wait()
            if self.until == "exit" and proc.returncode == 0:
                seconds = time.perf_counter() - t0
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                payload["cpu"] = (usage.ru_utime - usage0.ru_utime) + (
                    usage.ru_stime - usage0.ru_stime
                )
        finally:
            timer.cancel()
        if seconds is None:
            tail = stderr.text()
            last = tail.splitlines()[-1] if tail else "no output"
            if proc.returncode == NOT_YET_EXIT:
                raise NotYet(last)
            raise RuntimeError(f"exited with status {proc.returncode} before output: {last}")
        cpu = payload.pop("cpu", None)
        return Sample(seconds, float(cpu) if cpu is not None else None, payload)


#: Exit status a cold-process script uses to say its feature is not built yet.
NOT_YET_EXIT = 3
