"""The seeded fault schedule: what each iteration of a soak run fails, breaks and interrupts.

One ``Step`` per iteration. The failing tests evolve from step to step the way a night does:
root causes appear, spread to more tests, get fixed; on top come the faults (flaky tests,
truncated JUnit files, a secret in the output, staging down, WebSocket 1011s, GitHub trouble,
kill -9, SIGTERM, a second start) and the trust faults of issue 16 (a forged marker in test
output, labels GitHub drops or refuses, a pull request carrying a live marker, a listing that
omits an issue, a person closing an issue as not planned or as completed). The last step is
fault-free, so whatever waits in the outbox goes out and the end state can be judged.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployloop.testing import CAUSES
from deployloop.testing.github_server import SECONDARY_LIMIT, Fault

CORE_TESTS = tuple(f"t{i:02d}" for i in range(20))
LEGACY_TESTS = tuple(f"l{i}" for i in range(10))
MAX_CAUSES = 3  # live at once: with the extras a phase stays under the broken-deploy threshold
# Where a kill or a SIGTERM lands: right after one of these events ("write": while a GitHub
# write is in flight, its answer delayed so the daemon dies before it learns the result).
KILL_POINTS = ("iteration_start", "suite_start", "suite_end", "phase_end", "issue", "waiting")
FS_FAULTS = ("corrupt_state", "readonly_logs", "disk_full")  # played by tests.soak.fsplay
FS_CHANCE = 0.5  # per kind, in a step whose daemon is killed or stopped (so restarts)
# (kind, chance per step) of the trust faults the runner plays on the GitHub stand-in.
TRUST_FAULTS = (
    ("gh_labels_dropped", 0.1),
    ("gh_label_403", 0.06),
    ("gh_pr", 0.1),
    ("gh_listing_omits", 0.1),
    ("gh_close_not_planned", 0.05),
    ("gh_close_completed", 0.12),
)


@dataclass
class Cause:
    """One root cause failing a few tests of one suite with one message."""

    index: int  # into deployloop.testing.CAUSES
    suite: str  # "core" or "legacy"
    tests: list[str]


@dataclass
class Step:
    n: int
    scenario: dict[str, Any]
    flip: float | None = None  # redeploy (its delay) before this iteration; None: same version
    bug: bool = False  # the agent pipeline closes the WebSocket with 1011
    github: list[tuple[str, Fault]] = field(default_factory=list)
    kill_at: str | None = None  # an event kind from KILL_POINTS, or "write"
    term_at: str | None = None
    action_delay: float = 0.0  # seconds after the event before the kill or SIGTERM
    second_start: bool = False
    staging_down: float | None = None  # seconds into the core suite when a deploy starts
    final: bool = False
    trust: list[str] = field(default_factory=list)  # kinds from TRUST_FAULTS
    fs: list[str] = field(default_factory=list)  # kinds from fsplay.FS_FAULTS, at the restart

    def faults(self) -> list[str]:
        """The kinds of fault this step schedules, for the summary."""
        kinds = [kind for kind, _ in self.github] + list(self.trust) + list(self.fs)
        legacy = self.scenario["legacy"]
        flags = {
            "flip": self.flip is not None,
            "ws_1011": self.bug,
            "kill9": self.kill_at is not None,
            "kill9_mid_write": self.kill_at == "write",
            "sigterm": self.term_at is not None,
            "second_start": self.second_start,
            "staging_down": self.staging_down is not None,
            "truncated_junit": bool(legacy.get("truncate")),
            "secret_in_test": bool(self.scenario.get("secret")),
            "forged_marker": bool(self.scenario.get("forge")),
            "secret_in_log": bool(legacy.get("leak")),
        }
        kinds += [name for name, on in flags.items() if on]
        kinds += ["flaky"] * sum(1 for spec in self.scenario["core"].values() if spec.get("flaky"))
        return kinds


@dataclass(frozen=True, slots=True)
class Secrets:
    """The values that must never leave: in the daemon's environment or shaped like a token."""

    github_token: str
    api_token: str  # SOAK_API_TOKEN: printed by a test and put in its assertion message
    staging_token: str
    ghp_literal: str  # a GitHub-token-shaped literal in test output (no env var names it)
    # Issue 17's kinds, found by shape alone: {kind: (the line the test prints, the secret in
    # it)}. The test prints each line and puts it in its assertion message.
    printed: dict[str, tuple[str, str]] = field(default_factory=dict)

    def all(self) -> tuple[str, ...]:
        named = (self.github_token, self.api_token, self.staging_token, self.ghp_literal)
        return named + tuple(secret for _, secret in self.printed.values())

    def lines(self) -> list[str]:
        """What the soak project's secret test prints, one line per kind."""
        return [line for line, _ in self.printed.values()]


def secrets_for(seed: int) -> Secrets:
    rng = random.Random(f"secrets-{seed}")
    alnum = string.ascii_letters + string.digits

    def token(n: int, alphabet: str = alnum) -> str:
        # Never all letters: the redactor masks named secrets whatever they look like, but a
        # digit keeps the value from reading as an English word in any log.
        return "".join(rng.choice(alphabet) for _ in range(n - 1)) + rng.choice(string.digits)

    named = ("ghp_" + token(36), "sk_live_" + token(24), token(32), "ghp_" + token(36))
    return Secrets(*named, printed=_printed(token))


def _printed(token: Callable[..., str]) -> dict[str, tuple[str, str]]:
    """One fake value of each kind issue 17 found leaking, in the context it leaked in."""
    hex_digits, upper = "0123456789abcdef", string.ascii_uppercase + string.digits
    values = {
        "url credentials": ("GET https://deploy:{}@staging.example.com/api", token(14)),
        "dsn": ("connect postgres://app:{}@db.internal:5432/orders", token(12)),
        "password keyword": ("login with password={} failed", token(12)),
        "json keyword": ('{{"SecretAccessKey": "{}"}}', token(40)),
        "secret_key keyword": ("secret_key = {}", token(20)),
        "gcp private_key_id": ('{{"private_key_id": "{}"}}', token(40, hex_digits)),
        "slack": ("slack {}", f"xoxb-{token(11, string.digits)}-{token(24)}"),
        "stripe": ("stripe restricted key {}", "rk_live_" + token(24)),
        "gitlab": ("gitlab {}", "glpat-" + token(20)),
        "npm": ("npm publish with {}", "npm_" + token(36)),
        "pypi": ("twine upload with {}", "pypi-" + token(60)),
        "twilio": ("twilio key {} used", "SK" + token(32, hex_digits)),
        "jwt": ("session {}", f"eyJ{token(20)}.{token(30)}.{token(20)}"),
        "aws key id": ("aws key {} denied", "AKIA" + token(16, upper)),
    }
    return {kind: (line.format(secret), secret) for kind, (line, secret) in values.items()}


def build(seed: int, iterations: int) -> list[Step]:
    """The steps of one soak run; the same seed always gives the same schedule."""
    rng = random.Random(seed)
    secrets = secrets_for(seed)
    causes: list[Cause] = []
    steps = []
    for n in range(1, iterations + 1):
        final = n == iterations
        causes = _evolve(rng, causes, final)
        steps.append(_step(rng, n, causes, secrets, final, second_ok=n < iterations - 1))
    return steps


def _evolve(rng: random.Random, causes: list[Cause], final: bool) -> list[Cause]:
    """Some causes get fixed, a new one may appear, one may spread to another test."""
    kept = [c for c in causes if rng.random() > 0.25]
    if final:
        kept = kept[:2]  # well under the broken-deploy threshold: every cluster its own issue
    if (not final and len(kept) < MAX_CAUSES and rng.random() < 0.4) or (final and not kept):
        # The last iteration always has a live cluster, so "one open issue each" means something.
        used = {c.index for c in kept}
        free = [i for i in range(len(CAUSES)) if i not in used]
        suite = rng.choice(("core", "core", "legacy"))
        taken = _taken(kept, suite)
        pool = [t for t in (CORE_TESTS if suite == "core" else LEGACY_TESTS) if t not in taken]
        if free and pool:
            tests = rng.sample(pool, min(len(pool), rng.randint(1, 2)))
            kept.append(Cause(rng.choice(free), suite, tests))
    for cause in kept:
        everything = CORE_TESTS if cause.suite == "core" else LEGACY_TESTS
        spare = [t for t in everything if t not in _taken(kept, cause.suite)]
        if spare and len(cause.tests) < 3 and rng.random() < 0.1:
            cause.tests.append(rng.choice(spare))  # more tests fail with this error
    return [Cause(c.index, c.suite, list(c.tests)) for c in kept]


def _taken(causes: list[Cause], suite: str) -> set[str]:
    return {t for c in causes if c.suite == suite for t in c.tests}


def _step(
    rng: random.Random,
    n: int,
    causes: list[Cause],
    secrets: Secrets,
    final: bool,
    second_ok: bool,
) -> Step:
    core: dict[str, dict[str, Any]] = {}
    legacy: dict[str, str] = {}
    for cause in causes:
        # The request number differs every time; the fingerprint masks it: one cluster.
        message = f"{CAUSES[cause.index]} (request {rng.randrange(10**6)})"
        for test in cause.tests:
            if cause.suite == "core":
                core[test] = {"message": message}
            else:
                legacy[test] = message

    def chance(p: float) -> bool:
        return not final and rng.random() < p

    spare = [t for t in CORE_TESTS if t not in core]
    if spare and chance(0.25):
        name = rng.choice(spare)
        core[name] = {"message": "upstream call timed out after 3 s", "flaky": f"{n}-{name}"}
    secret = chance(0.2)
    forge = secret and chance(0.5)
    scenario = {
        "seq": n,
        "core": core,
        "secret": secret,
        "forge": "<!-- deployloop:fingerprint=v1-0000000000f0 -->" if forge else "",
        "ghp": secrets.ghp_literal,
        "printed": secrets.lines(),
        "legacy": {"fail": legacy, "truncate": chance(0.12), "leak": chance(0.3)},
    }
    step = Step(n, scenario, final=final)
    step.flip = rng.uniform(0.05, 0.4) if rng.random() < 0.6 else None
    step.bug = chance(0.15)
    step.github = _github_faults(rng, chance)
    if chance(0.16):
        step.kill_at = rng.choice((*KILL_POINTS, "write", "write"))
        if step.kill_at == "write":  # slow the answer so the kill lands while it is in flight
            step.github.append(("gh_slow", Fault(None, r"/issues", status=None, delay=1.5)))
    elif chance(0.08):
        step.term_at = rng.choice(KILL_POINTS)
    step.action_delay = rng.uniform(0.0, 0.3)
    # Never with a kill or SIGTERM in the same step: a second start that reaches the lock
    # after the daemon died would simply be the next daemon.
    quiet = step.kill_at is None and step.term_at is None
    step.second_start = second_ok and quiet and bool(causes) and chance(0.1)
    step.staging_down = rng.uniform(0.0, 0.3) if chance(0.08) else None
    step.trust = [kind for kind, p in TRUST_FAULTS if chance(p)]
    if not quiet:  # the daemon restarts in this step: a broken machine meets the restart
        step.fs = [kind for kind in FS_FAULTS if rng.random() < FS_CHANCE]
    if "gh_close_completed" in step.trust:
        # A hand-closed issue is reopened when deployloop next writes about its cause: a new
        # version in an iteration that runs to its end. So such a step brings one (dropping
        # the fault instead left it firing in almost no seed).
        if quiet:
            step.flip = step.flip or rng.uniform(0.05, 0.4)
        else:
            step.trust.remove("gh_close_completed")
    return step


def _github_faults(rng: random.Random, chance: Callable[[float], bool]) -> list[tuple[str, Fault]]:
    faults: list[tuple[str, Fault]] = []
    paths = (r"/issues$", r"/issues/\d+$", r"/comments$", r"/labels$", "")
    if chance(0.15):
        status = rng.choice((500, 502, 503))
        method = rng.choice(("GET", "POST", "PATCH", None))
        fault = Fault(method, rng.choice(paths), status=status, times=rng.randint(1, 2))
        faults.append(("gh_5xx", fault))
    if chance(0.12):
        faults.append(("gh_lost_create", Fault.lost_create()))
    if chance(0.1):
        # A comment or a state change that lands but whose answer is lost.
        method, path = rng.choice((("POST", r"/comments$"), ("PATCH", r"/issues/\d+$")))
        lost = Fault(method, path, status=502, process=True, message="Bad Gateway")
        faults.append(("gh_lost_answer", lost))
    if chance(0.08):
        limit = Fault(rng.choice(("POST", None)), status=403, times=1, message=SECONDARY_LIMIT)
        limit.headers = {"Retry-After": "1"}
        faults.append(("gh_secondary_limit", limit))
    if chance(0.05):
        faults.append(("gh_429", Fault.too_many(retry_after=1)))
    if chance(0.1):
        slow = Fault(None, rng.choice(paths), status=None, times=2, delay=rng.uniform(0.2, 0.8))
        faults.append(("gh_slow", slow))
    if chance(0.06):
        # Longer than the tracker's retries last: its writes wait in the outbox.
        faults.append(("gh_outage", Fault(None, "", status=503, times=12)))
    return faults
