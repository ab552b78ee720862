"""One soak run: the real daemon against a local staging and a local GitHub, under a seeded
fault schedule, restarted whenever it dies, until it has finished the wanted iterations.

The runner follows the daemon through its events journal: each ``iteration_end`` moves the
schedule to the next step (scenario file, staging version and bug, GitHub faults); the other
events are the moments a kill -9, a SIGTERM, a second start or a staging outage lands.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from deployloop.simulator import Simulator
from deployloop.testing.github_server import FakeGitHub, Fault
from tests.fsfaults import Unavailable
from tests.soak import fsplay, invariants
from tests.soak.project import write_project
from tests.soak.schedule import Secrets, Step, build, secrets_for

LAUNCH = Path(__file__).with_name("launch.py")
POLL_S = 0.02  # how often the runner looks at the journal, the daemon and GitHub's requests
STAGING_DOWN_S = 0.8  # how long a mid-suite deploy keeps staging answering 503
SECOND_START_TIMEOUT_S = 30.0
WRITE_INTERVAL = "0.05s"  # [issues] write_interval in the soak (GitHub's real ask: 1 s)
MAX_BAD_EXITS = 5  # unexpected daemon exits in a row before the run is abandoned


@dataclass
class ExitRecord:
    """How one daemon (or second start) ended, against what the runner expected."""

    role: str  # "daemon" or "second"
    expected: str  # "kill", "term", "end" (its own end) or "lock" (exit 75)
    rc: int | None
    ok: bool
    took_s: float = 0.0  # SIGTERM to exit
    note: str = ""


@dataclass
class Tally:
    """What the run did: faults fired (not only scheduled), starts, restarts."""

    fired: dict[str, int] = field(default_factory=dict)
    scheduled: dict[str, int] = field(default_factory=dict)

    def fire(self, kind: str, n: int = 1) -> None:
        if n:
            self.fired[kind] = self.fired.get(kind, 0) + n

    def schedule(self, kinds: list[str]) -> None:
        for kind in kinds:
            self.scheduled[kind] = self.scheduled.get(kind, 0) + 1


@dataclass
class SoakResult:
    seed: int
    iterations: int
    completed: int
    elapsed_s: float
    root: Path
    checks: list[invariants.Check]
    tally: Tally
    daemon_starts: int
    sessions: int
    skipped: tuple[str, ...] = ()  # faults this machine could not make, with the reason

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


class JournalTail:
    """New events of every session's ``events.jsonl`` since the last look, in time order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.offsets: dict[Path, int] = {}

    def poll(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for path in self.logs.glob("*/events.jsonl"):
            offset = self.offsets.get(path, 0)
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            end = data.rfind(b"\n")
            if end < 0:
                continue  # only a line still being written
            self.offsets[path] = offset + end + 1
            for line in data[: end + 1].splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                found.append({**event, "_session": path.parent.name})
        found.sort(key=lambda e: float(e.get("ts", 0.0)))
        return found


@dataclass
class _Pending:
    """A fault that lands a moment after the event that triggers it."""

    kind: str  # "kill", "term", "down"
    at: float


class SoakRun:
    def __init__(
        self,
        seed: int,
        iterations: int,
        *,
        log: Callable[[str], None] = print,
        timeout_s: float | None = None,
        keep: bool = False,
        real_pacing: bool = False,
        mutant: str | None = None,
    ) -> None:
        self.seed = seed
        self.iterations = iterations
        self.log = log
        self.timeout_s = timeout_s or 60.0 + 20.0 * iterations
        self.keep = keep
        self.real_pacing = real_pacing
        self.mutant = mutant  # a promise broken on purpose, to show the checks catch it
        self.steps = build(seed, iterations)
        self.secrets: Secrets = secrets_for(seed)
        self.tally = Tally()
        self.exits: list[ExitRecord] = []
        self.completed = 0
        self.daemon_starts = 0
        self.timed_out = False
        self.gave_up = ""
        # per-daemon bookkeeping
        self.daemon: subprocess.Popen[bytes] | None = None
        self.expect = "end"
        self.term_sent = 0.0
        self.running = False  # its session_start is in the journal: signal handlers are in
        self.session_end: dict[str, Any] | None = None
        self.bad_exits = 0
        # per-step bookkeeping
        self.index = 0
        self.fired: set[str] = set()
        self.pending: list[_Pending] = []
        self.injected: list[tuple[str, Fault, int]] = []
        self.calls_seen = 0
        self.second: tuple[subprocess.Popen[bytes], float] | None = None
        self.skips: set[str] = set()  # faults this machine cannot make, with the reason

    @property
    def step(self) -> Step:
        return self.steps[min(self.index, len(self.steps) - 1)]

    # the run -----------------------------------------------------------------------------
    def run(self) -> SoakResult:
        started = time.monotonic()
        root = Path(tempfile.mkdtemp(prefix=f"deployloop-soak-{self.seed}-"))
        secrets = self.secrets
        with (
            Simulator(token=secrets.staging_token) as staging,
            FakeGitHub(token=secrets.github_token) as github,
        ):
            self.staging, self.github = staging, github
            pacing = None if self.real_pacing else WRITE_INTERVAL
            self.project = write_project(root, staging.base_url, staging.ws_url, github.url, pacing)
            try:
                self._drive()
            finally:
                self._stop_everything()
            orphans = leftover_processes(root)
            evidence = invariants.gather(
                self.project,
                github,
                secrets.all(),
                self.exits,
                self.iterations,
                orphans,
            )
        checks = invariants.check_all(evidence)
        if self.timed_out or self.gave_up:
            reason = self.gave_up or f"timed out after {self.timeout_s:.0f} s"
            checks.insert(0, invariants.Check("run finished", False, reason))
        result = SoakResult(
            self.seed,
            self.iterations,
            self.completed,
            time.monotonic() - started,
            root,
            checks,
            self.tally,
            self.daemon_starts,
            len(evidence.sessions),
            tuple(sorted(self.skips)),
        )
        if result.passed and not self.keep:
            shutil.rmtree(root, ignore_errors=True)
        return result

    def _drive(self) -> None:
        tail = JournalTail(self.project.logs)
        self._enter_step(0)
        give_up = time.monotonic() + self.timeout_s
        while not self.gave_up:
            if time.monotonic() > give_up:
                self.timed_out = True
                return
            self._reap_second()
            exited = self.daemon is not None and self.daemon.poll() is not None
            for event in tail.poll():
                self._on_event(event)
            if exited:
                self._daemon_exited()
            if self.daemon is None:
                if self.completed >= self.iterations:
                    return
                self._start_daemon()
            self._watch_writes()
            self._fire_due()
            time.sleep(POLL_S)

    # steps -------------------------------------------------------------------------------
    def _enter_step(self, index: int) -> None:
        """Set the stage for the next iteration while the daemon waits for the redeploy."""
        self._count_github_faults()
        self.index = index
        step = self.step
        self.fired = set()
        self.pending = []
        self.project.write_scenario(step.scenario)
        self.github.clear_faults()
        self.injected = [(kind, fault, fault.times or 0) for kind, fault in step.github]
        self.github.inject(*(fault for _, fault in step.github))
        self.staging.set_bug(step.bug)
        self.tally.schedule(step.faults())
        self.tally.fire("ws_1011", step.bug)
        self.tally.fire("flaky", sum(1 for s in step.scenario["core"].values() if s.get("flaky")))
        self.tally.fire("secret_in_test", bool(step.scenario.get("secret")))
        self.tally.fire("secret_in_log", bool(step.scenario["legacy"].get("leak")))
        self.tally.fire("truncated_junit", bool(step.scenario["legacy"].get("truncate")))
        self.tally.fire("forged_marker", bool(step.scenario.get("forge")))
        self._play_trust_faults(step, random.Random(f"{self.seed}-{index}"))
        if step.flip is not None and index > 0:
            self.staging.deploy(fix=False, delay_s=step.flip)
            self.tally.fire("flip")

    def _play_trust_faults(self, step: Step, rng: random.Random) -> None:
        """Issue 16's faults on the GitHub stand-in, for this step only."""
        github = self.github
        github.push_access = "gh_labels_dropped" not in step.trust
        github.labels_forbidden = "gh_label_403" in step.trust
        self.tally.fire("gh_labels_dropped", not github.push_access)
        self.tally.fire("gh_label_403", github.labels_forbidden)
        with github._lock:
            github.hidden.clear()
            mine = [
                n
                for n, issue in github.issues.items()
                if issue["state"] == "open" and not issue["pull"]
            ]
        if not mine:
            return
        if "gh_listing_omits" in step.trust:
            github.hidden.add(rng.choice(mine))
            self.tally.fire("gh_listing_omits")
        if "gh_pr" in step.trust:
            body = github.issues[rng.choice(mine)]["body"]
            github.add_issue("Fix it", body, ["deployloop", "e2e-failure"], pull=True)
            self.tally.fire("gh_pr")
        for reason in ("not_planned", "completed"):
            if f"gh_close_{reason}" in step.trust:
                github.close_by_hand(rng.choice(mine), reason)
                self.tally.fire(f"gh_close_{reason}")

    def _count_github_faults(self) -> None:
        for kind, fault, initial in self.injected:
            self.tally.fire(kind, initial - max(fault.times or 0, 0))
        self.injected = []

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "session_start":
            self.running = True
        elif kind == "session_end":
            self.session_end = event
        elif kind == "iteration_end":
            self.completed += 1
            if self.completed < self.iterations:
                self._enter_step(self.completed)
            return
        step, now = self.step, time.monotonic()
        if kind == step.kill_at and "kill" not in self.fired:
            self._later("kill", now + step.action_delay)
        if kind == step.term_at and "term" not in self.fired:
            self._later("term", now + step.action_delay)
        if kind == "suite_start" and event.get("suite") == "core" and event.get("pass") == "full":
            if step.staging_down is not None and "down" not in self.fired:
                self._later("down", now + step.staging_down)
            if step.second_start and "second" not in self.fired:
                self.fired.add("second")
                self._start_second()

    def _later(self, kind: str, at: float) -> None:
        self.fired.add(kind)
        self.pending.append(_Pending(kind, at))

    def _fire_due(self) -> None:
        now = time.monotonic()
        due = [p for p in self.pending if p.at <= now]
        self.pending = [p for p in self.pending if p.at > now]
        for action in due:
            if action.kind in ("kill", "term") and self.second is not None:
                # A second start still on its way to the lock would take the daemon's place.
                self.pending.append(_Pending(action.kind, now + POLL_S))
                continue
            if action.kind == "down":
                self.staging.deploy(fix=False, delay_s=STAGING_DOWN_S)
                self.tally.fire("staging_down")
            elif action.kind == "kill":
                self._kill()
            elif action.kind == "term":
                self._terminate()

    def _watch_writes(self) -> None:
        """A kill while a GitHub write is in flight (its answer delayed by a slow fault)."""
        calls = self.github.calls
        if len(calls) == self.calls_seen:
            return
        new = calls[self.calls_seen :]
        self.calls_seen += len(new)
        step = self.step
        writing = any(call.method in ("POST", "PATCH") for call in new)
        if step.kill_at == "write" and writing and "kill" not in self.fired and not self.second:
            self.fired.add("kill")
            if self._kill():
                self.tally.fire("kill9_mid_write")

    # the daemon ----------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DEPLOYLOOP_", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"))
        }
        env.update(
            SOAK_SCENARIO=str(self.project.scenario),
            SOAK_FLAKY_DIR=str(self.project.flaky_dir),
            SOAK_INJECTIONS=str(self.project.injections),
            SOAK_STAGING_URL=self.staging.base_url,
            STAGING_TOKEN=self.secrets.staging_token,
            SOAK_API_TOKEN=self.secrets.api_token,
            GITHUB_TOKEN=self.secrets.github_token,
            NO_COLOR="1",
        )
        if self.mutant:
            env["SOAK_MUTANT"] = self.mutant
        return env

    def _argv(self, *extra: str) -> list[str]:
        plain = not self.mutant
        entry = ["-m", "deployloop"] if plain else [str(LAUNCH)]
        return [sys.executable, *entry, "run", "-c", str(self.project.config), *extra]

    def _spawn(self, argv: list[str], out: Path) -> subprocess.Popen[bytes]:
        handle: IO[bytes]
        with open(out, "ab") as handle:
            return subprocess.Popen(
                argv,
                cwd=self.project.root,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )

    def _play_fs_faults(self) -> None:
        """The step's broken machines, each met by one start before the real restart."""
        for kind in self.step.fs:
            if kind in self.fired:
                continue
            self.fired.add(kind)
            rng = random.Random(f"{self.seed}-{self.index}-{kind}")
            try:
                ok, said = fsplay.play(kind, self.project, self._argv(), self._env(), rng)
            except Unavailable as exc:
                self.tally.fire(f"{kind}_skipped")
                self.skips.add(f"{kind}: {exc}")
                continue
            self.tally.fire(kind)
            self.exits.append(ExitRecord("fs", kind, None, ok, note=said))
            if not ok:
                self.log(f"seed {self.seed}: {kind}: {said}")

    def _start_daemon(self) -> None:
        if self.daemon_starts:
            self._play_fs_faults()
        left = str(self.iterations - self.completed)  # used only when a new session starts
        self.daemon = self._spawn(self._argv("--max-iterations", left), self.project.daemon_out)
        self.daemon_starts += 1
        self.expect, self.running, self.session_end = "end", False, None

    def _kill(self) -> bool:
        if self.daemon is None or self.daemon.poll() is not None:
            return False
        self.daemon.send_signal(signal.SIGKILL)
        self.expect = "kill"
        self.tally.fire("kill9")
        return True

    def _terminate(self) -> None:
        daemon = self.daemon
        if daemon is None or daemon.poll() is not None or self.expect == "kill":
            return
        if not self.running:  # not yet handling signals: wait for its session_start
            self.pending.append(_Pending("term", time.monotonic() + POLL_S))
            return
        daemon.send_signal(signal.SIGTERM)
        self.expect, self.term_sent = "term", time.monotonic()
        self.tally.fire("sigterm")

    def _daemon_exited(self) -> None:
        assert self.daemon is not None
        rc = self.daemon.returncode
        ended = self.session_end
        ended_rc = ended.get("exit_code") if ended else None
        took = time.monotonic() - self.term_sent if self.expect == "term" else 0.0
        if self.expect == "kill":
            ok, note = rc == -signal.SIGKILL, ""
        elif self.expect == "term":
            # 143; or the session reached its own end as the signal came: its own exit code.
            ok = rc == 143 or (rc in (0, 1) and ended_rc == rc)
            note = "" if rc == 143 else f"session ended {ended_rc} as SIGTERM came"
        else:
            ok = rc in (0, 1) and ended_rc == rc
            note = f"session_end said {ended_rc}" if not ok else ""
        self.exits.append(ExitRecord("daemon", self.expect, rc, ok, took, note))
        if not ok:
            self.log(f"seed {self.seed}: daemon exited {rc} (expected {self.expect}) {note}")
            self.log(self._tail(self.project.daemon_out))
        self.bad_exits = 0 if ok else self.bad_exits + 1
        if self.bad_exits >= MAX_BAD_EXITS:
            self.gave_up = f"{MAX_BAD_EXITS} unexpected daemon exits in a row"
        self.daemon = None

    def _start_second(self) -> None:
        """A second start while the daemon runs: must exit 75 at once, touching nothing."""
        if self.daemon is None or self.daemon.poll() is not None or self.second is not None:
            return
        out = self.project.root / "second.out"
        self.second = (self._spawn(self._argv(), out), time.monotonic())
        self.tally.fire("second_start")

    def _reap_second(self, wait: bool = False) -> None:
        if self.second is None:
            return
        proc, started = self.second
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(SECOND_START_TIMEOUT_S)
        if proc.poll() is None:
            if time.monotonic() - started < SECOND_START_TIMEOUT_S:
                return
            proc.kill()
            proc.wait()
            self.exits.append(ExitRecord("second", "lock", None, False, note="still running"))
        else:
            rc = proc.returncode
            note = "" if rc == 75 else self._tail(self.project.root / "second.out")
            self.exits.append(ExitRecord("second", "lock", rc, rc == 75, note=note))
        self.second = None

    def _stop_everything(self) -> None:
        self._reap_second(wait=True)
        self._count_github_faults()
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
        if self.daemon is not None:
            self.daemon.wait()
        self.daemon = None

    @staticmethod
    def _tail(path: Path, limit: int = 1500) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")[-limit:]
        except OSError:
            return ""


def leftover_processes(root: Path, grace_s: float = 15.0) -> list[str]:
    """Processes still naming the soak's directory, after ``grace_s`` for stragglers to end.

    A kill -9 leaves the suite it was running behind (nothing can stop it then); those end by
    themselves within seconds. Anything still there after the grace period is an orphan.
    """
    deadline = time.monotonic() + grace_s
    while True:
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                cmdline = " ".join(proc.info["cmdline"] or ())
                if str(root) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    found.append(f"{proc.info['pid']}: {cmdline[:200]}")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)
