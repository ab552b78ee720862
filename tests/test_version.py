"""Reading the deployed version from a URL (JSON, header, body) or a command, and its failures."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deployloop.config import TargetConfig, VersionSource
from deployloop.errors import DeployloopError
from deployloop.simulator import Simulator
from deployloop.version import VersionUnavailable, read_version

PYTHON = shlex.quote(sys.executable)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def source(**fields: Any) -> VersionSource:
    return VersionSource.model_validate(fields)


def target_at(base_url: str, **extra: Any) -> TargetConfig:
    return TargetConfig.model_validate({"base_url": base_url, **extra})


def test_json_key(sim: Simulator) -> None:
    """A json key on a URL relative to base_url gives the version."""
    assert (
        read_version(source(url="/version", json="commit"), target_at(sim.base_url)) == "rev-0001"
    )


def test_dotted_json_path_reaches_into_lists(sim: Simulator) -> None:
    """A dotted path walks objects and list indexes."""
    found = read_version(source(url="/api/agents", json="agents.0.name"), target_at(sim.base_url))
    assert found == "triage"


def test_header(sim: Simulator) -> None:
    """A header source reads the version from that response header."""
    assert (
        read_version(source(url="/version", header="x-revision"), target_at(sim.base_url))
        == "rev-0001"
    )


def test_plain_body_is_stripped(sim: Simulator) -> None:
    """A bare url source is the response body without surrounding whitespace."""
    assert read_version(source(url="/version.txt"), target_at(sim.base_url)) == "rev-0001"


def test_target_headers_are_sent() -> None:
    """The target's headers go with the request: a guarded route answers only with them."""
    with Simulator(token="t0ken") as sim:
        bare = target_at(sim.base_url)
        authed = target_at(sim.base_url, headers={"Authorization": "Bearer t0ken"})
        where = source(url="/api/agents", json="agents.0.status")
        with pytest.raises(VersionUnavailable, match="HTTP 403"):
            read_version(where, bare)
        assert read_version(where, authed) == "ready"


def test_command_stdout_without_a_shell() -> None:
    """A command's stripped stdout is the version; parentheses alone do not call for a shell."""
    command = f"{PYTHON} -c \"print('rev-9')\""
    assert read_version(source(command=command), target_at("http://127.0.0.1:9")) == "rev-9"


def test_command_with_shell_syntax_runs_in_a_shell() -> None:
    """A pipe in the command is honoured by running it under /bin/sh."""
    command = f"{PYTHON} -c \"print('rev-10')\" | tr a-z A-Z"
    assert read_version(source(command=command), target_at("http://127.0.0.1:9")) == "REV-10"


def test_failing_command_names_command_code_and_stderr() -> None:
    """A failing command's error carries the command, its exit code and its stderr tail."""
    command = f"{PYTHON} -c \"import sys; sys.stderr.write('gcloud: auth expired'); sys.exit(4)\""
    with pytest.raises(VersionUnavailable) as caught:
        read_version(source(command=command), target_at("http://127.0.0.1:9"))
    message = str(caught.value)
    assert "exited 4" in message
    assert "gcloud: auth expired" in message
    assert "sys.exit(4)" in message


def test_command_timeout_kills_the_whole_group() -> None:
    """A command past its timeout is stopped, shell and children alike, and reported."""
    command = f'{PYTHON} -c "import time; time.sleep(30)" | cat'
    began = time.monotonic()
    with pytest.raises(VersionUnavailable, match=r"timed out after 0\.3 s"):
        read_version(source(command=command), target_at("http://127.0.0.1:9"), timeout=0.3)
    assert time.monotonic() - began < 5


def test_missing_program_is_reported() -> None:
    """A command that cannot start says so instead of raising OSError."""
    with pytest.raises(VersionUnavailable, match="cannot start"):
        read_version(source(command="/nonexistent/gcloud run"), target_at("http://127.0.0.1:9"))


def test_unavailable_when_the_server_is_down() -> None:
    """The port of a stopped server gives VersionUnavailable, a DeployloopError."""
    with Simulator() as sim:
        base_url = sim.base_url
    with pytest.raises(VersionUnavailable, match="ConnectError") as caught:
        read_version(source(url="/version", json="commit"), target_at(base_url))
    assert isinstance(caught.value, DeployloopError)


def test_unavailable_while_deploying(sim: Simulator) -> None:
    """A 503 during a deploy is VersionUnavailable, so the waiter reads it as 'deploying'."""
    sim.deploy(delay_s=5)
    with pytest.raises(VersionUnavailable, match="HTTP 503"):
        read_version(source(url="/version", json="commit"), target_at(sim.base_url))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"url": "/version", "json": "sha"}, "no key 'sha'"),
        ({"url": "/version", "header": "x-commit"}, "no 'x-commit' header"),
        ({"url": "/version.txt", "json": "commit"}, "not JSON"),
    ],
)
def test_missing_key_or_header_is_unavailable(
    sim: Simulator, fields: dict[str, str], problem: str
) -> None:
    """A key, header or JSON body that is not there is VersionUnavailable naming what is missing."""
    with pytest.raises(VersionUnavailable, match=problem):
        read_version(source(**fields), target_at(sim.base_url))
