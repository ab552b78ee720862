"""Issue 17 end to end: one corpus of every secret kind, through a real `deployloop run`.

Failing tests print each secret in their message, on stdout and on stderr; one carries a
secret in its test id; the suite's `run` line and `env` take a value from `${DB_PASS}`; the
config's header takes `${STAGING_AUTH}`, printed alone. Whatever deployloop leaves (requests
to GitHub, every file under logs/ with state.db read through sqlite3, the CLI's own output)
holds none of the raw values; nor does the disk after a `kill -9` mid-suite and `run --new`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from deployloop.testing.github_server import FakeGitHub, iter_bodies
from tests.helpers import (
    cli,
    config_text,
    phase_block,
    python_pytest,
    start_cli,
    suite_block,
    wait_for,
    write_tests,
)

STAGING_AUTH = "stg-4uth-V4lue-90210"  # [target] headers: Authorization = "Bearer ${STAGING_AUTH}"
DB_PASS = "Db-p4ss-7391"  # a suite env value and a `run` option: names no pattern knows
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Vq9pXk2"
ID_SECRET = "sk_live_9fQ2mZx7Lp4Rt8Vw1Yb6"  # the id of a parametrized test

# kind: (the line a test prints, the raw value that must never be seen)
CORPUS: dict[str, tuple[str, str]] = {
    "github ghp": ("token {}", "ghp_Zx81Qw7Ep2Rt5Yu9Io3Pa6Sd4Fg0Hj1Kl8Mn"),
    "github gho": ("oauth {}", "gho_Ab34Cd56Ef78Gh90Ij12Kl34Mn56Op78Qr90"),
    "github ghs": ("app {}", "ghs_Tu12Vw34Xy56Za78Bc90De12Fg34Hi56Jk78"),
    "github pat": ("pat {}", "github_pat_11ABCDE2F0aB3cD4eF5gH6_iJ7kL8mN9oP0qR1sT2uV3wX4"),
    "bearer": ("Authorization: Bearer {}", "br3arer-T0ken-Xy91Zq"),
    "basic": ("proxy sent Basic {}", "dXNlcjpQNHNzdzByZDEyMw=="),
    "jwt": ("session {}", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyNDIifQ.c2lnbmF0dXJlOTk"),
    "aws key id": ("aws key {} denied", "AKIAQX7ZP2M4N8R5T1VW"),
    "aws secret": ("aws_secret_access_key={}", "wJalrXUtnFEMI7K7MDENGbPxRfiCYz9Q2ex4mpl3"),
    "url credentials": ("GET https://deploy:{}@staging.example.com/api", "Url-Pw-5521x"),
    "dsn": ("connect postgres://app:{}@db.internal:5432/orders", "Dsn-Pw-8830q"),
    "password keyword": ("login with password={} failed", "Pw-Kw-41177z"),
    "passwd keyword": ("passwd: {}", "Pwd-Colon-6620k"),
    "json keyword": ('{{"SecretAccessKey": "{}"}}', "Js0nSecretAcc3ssKey00112233"),
    "json password": ('{{"password": "{}"}}', "Js0n-Pass-77881"),
    "secret_key keyword": ("secret_key = {}", "Sk-Kw-Value-99120"),
    "gcp private_key_id": ('{{"private_key_id": "{}"}}', "3f9a1c7e5b2d4f6a8c0e" * 2),
    "slack bot": ("slack {}", "xoxb-123456789012-1234567890123-Ab1Cd2Ef3Gh4Ij5Kl6Mn7"),
    "slack user": ("slack {}", "xoxp-223456789012-2234567890123-Zy1Xw2Vu3Ts4Rq5Po6"),
    "stripe": ("stripe {}", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    "twilio": ("twilio key {} used", "SK0123456789abcdef0123456789abcdef"),
    "npm": ("npm publish with {}", "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    "pypi": ("twine upload with {}", "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZjAxLTIzNDUtNjc4OS1hYmNk"),
    "gitlab": ("gitlab {}", "glpat-Xy12Zw34Vu56Ts78Rq90"),
    "header value alone": ("staging said {}", STAGING_AUTH),
    "suite env": ("db pw {}", DB_PASS),
}
RAW = (*(value for _, value in CORPUS.values()), PEM_BODY, ID_SECRET)

SUITE = """
import os, sys, pytest

CORPUS = {corpus!r}
PEM = "-----BEGIN PRIVATE KEY-----\\n{pem}\\n-----END PRIVATE KEY-----"


def shout(text):
    print(text)
    print(text, file=sys.stderr)
    raise AssertionError("leaked: " + text)


@pytest.mark.parametrize("kind", sorted(CORPUS))
def test_prints(kind):
    line, value = CORPUS[kind]
    shout(line.format(value))


def test_key_block():
    shout(PEM)


def test_env_and_run_line(request):
    dsn_pass = request.config.getoption("dsn_pass")
    shout(f"SUITE_DB_PW={{os.environ['SUITE_DB_PW']}} --dsn-pass {{dsn_pass}}")


@pytest.mark.parametrize("key", ["x"], ids=["{id_secret}"])
def test_id(key):
    assert key == "y"


def test_hangs(capsys):
    if not os.environ.get("HANG"):
        return
    with capsys.disabled():  # straight to the log, while the test still runs
        for line, value in CORPUS.values():
            print(line.format(value))
        print(PEM)
        print("MARK-PRINTED")
        print("waiting", flush=True)
        import time
        time.sleep(120)
"""
CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--dsn-pass", dest="dsn_pass")
"""


def project(tmp_path: Path, tracker: str) -> dict[str, str]:
    """The suite, its conftest and a config filing on ``tracker`` (an [issues] table)."""
    source = SUITE.format(corpus=CORPUS, pem=PEM_BODY, id_secret=ID_SECRET)
    write_tests(tmp_path / "e2e", "test_leaky.py", source)
    write_tests(tmp_path / "e2e", "conftest.py", CONFTEST)
    run = python_pytest(str(tmp_path / "e2e"))
    suite = suite_block("leaky", run + " --dsn-pass=${DB_PASS}", env={"SUITE_DB_PW": "${DB_PASS}"})
    extra = '[target.headers]\nAuthorization = "Bearer ${STAGING_AUTH}"\n'
    extra += tracker + "[retest]\nrerun_failed = false\n"
    (tmp_path / "deployloop.toml").write_text(config_text(phase_block("e2e", suite), extra=extra))
    return {"STAGING_AUTH": STAGING_AUTH, "DB_PASS": DB_PASS}


def leaks_on_disk(logs: Path) -> list[str]:
    """Every raw value seen in any file under ``logs`` (state.db also through sqlite3)."""
    found = []
    for path in sorted(p for p in logs.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace")
        found += [f"{path.relative_to(logs)}: {value}" for value in RAW if value in text]
    for db in logs.rglob("state.db"):
        found += [f"state.db rows: {value}" for value in RAW if value in _dump(db)]
    return found


def _dump(db: Path) -> str:
    """Every value in every table (the WAL included: read through a connection)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        query = "SELECT name FROM sqlite_master WHERE type='table'"
        tables = [name for (name,) in conn.execute(query)]
        rows = (row for table in tables for row in conn.execute(f"SELECT * FROM {table}"))
        return "\n".join(str(row) for row in rows)


def leaks_in(texts: list[str]) -> list[str]:
    return [value for value in RAW if any(value in text for text in texts)]


@pytest.mark.slow
def test_github_tracker_run_leaks_nothing(tmp_path: Path) -> None:
    """Every kind, through `run --once` filing on the local GitHub: no raw value anywhere."""
    with FakeGitHub() as github:
        tracker = (
            f'[issues]\ntracker = "github"\nrepo = "{github.repo}"\ntoken = "${{GITHUB_TOKEN}}"\n'
            f'api_url = "{github.url}"\nwrite_interval = "0s"\n'
        )
        env = {**project(tmp_path, tracker), "GITHUB_TOKEN": github.token}
        done = cli("run", "--once", cwd=tmp_path, env=env)
        sent = list(iter_bodies(github.requests()))
    assert done.returncode == 1, done.stderr
    assert github.requests("POST", "/issues"), "nothing was filed: the check proves nothing"
    assert "--dsn-pass=${DB_PASS}" in "\n".join(sent)  # Reproduce shows the ${NAME} form
    assert leaks_in(sent) == []
    assert leaks_on_disk(tmp_path / "logs") == []
    assert leaks_in([done.stdout, done.stderr]) == []


@pytest.mark.slow
def test_local_tracker_run_leaks_nothing(tmp_path: Path) -> None:
    """Every kind, through `run --once` filing local issues: no raw value anywhere."""
    env = project(tmp_path, '[issues]\ntracker = "local"\n')
    done = cli("run", "--once", cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stderr
    issues = list((tmp_path / "logs" / "issues").glob("*.md"))
    assert issues and "[REDACTED]" in "".join(p.read_text() for p in issues)
    assert leaks_on_disk(tmp_path / "logs") == []
    assert leaks_in([done.stdout, done.stderr]) == []


@pytest.mark.slow
def test_kill_9_mid_suite_leaves_no_raw_value(tmp_path: Path) -> None:
    """A deployloop killed while a test prints secrets leaves none on disk, before the kill,
    after it, and after `run --new` stopped the orphaned suite and scrubbed what it left
    (its raw scratch directory under $TMPDIR included)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**project(tmp_path, '[issues]\ntracker = "local"\n'), "TMPDIR": str(scratch)}
    logs = tmp_path / "logs"
    first = start_cli("run", "--once", cwd=tmp_path, env={**env, "HANG": "1"})
    pgid = 0
    try:
        log = wait_for(lambda: next(logs.glob("*/1/leaky.log"), None), timeout=60)
        wait_for(lambda: "MARK-PRINTED" in log.read_text(errors="replace"), timeout=60)
        pgid = int(log.with_suffix(".pid").read_text().split()[0])
        assert "[REDACTED]" in log.read_text(errors="replace")
        assert leaks_on_disk(logs) == []  # the suite is still running
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert leaks_on_disk(logs) == [] and list(scratch.glob("deployloop-suite-*"))
        second = cli("run", "--once", "--new", cwd=tmp_path, env=env)
        assert second.returncode == 1, second.stderr
        assert not _alive(pgid), "the orphaned suite was not stopped"
        assert leaks_on_disk(logs) == [] and list(scratch.glob("deployloop-suite-*")) == []
        assert leaks_in([second.stdout, second.stderr, (tmp_path / "cli.out").read_text()]) == []
    finally:
        first.kill()
        first.wait(timeout=10)
        if pgid:
            _kill_group(pgid)


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
