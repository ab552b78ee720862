"""Config: lookup order, interpolation, durations, defaults, and FILE:LINE problem reports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deployloop import config
from deployloop.commands.init import starter_text
from deployloop.errors import ConfigError, UsageError

MINIMAL = """
[session]
name = "night"

[target]
base_url = "http://127.0.0.1:9"

[[phase]]
name = "p1"
  [[phase.suite]]
  name = "critical"
  run = "pytest tests"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    """Session name, base_url and one suite are a valid config; no gates means 100 %."""
    cfg = config.load(write(tmp_path / "c.toml", MINIMAL))
    assert cfg.phases[0].gates.pass_rate == 1.0
    assert cfg.issues.tracker == "local"
    assert cfg.redeploy is None
    assert cfg.phases[0].suites[0].timeout == 1800.0


def test_durations_and_clock_parse(tmp_path: Path) -> None:
    """'8h', '15m', '90s' become seconds and '07:00' a clock time."""
    text = MINIMAL.replace('name = "night"', 'name = "night"\nbudget = "8h"\nuntil = "07:00"')
    text += '  timeout = "15m"\n[redeploy]\npoll = "90s"\n'
    cfg = config.load(write(tmp_path / "c.toml", text))
    assert cfg.session.budget == 8 * 3600
    assert cfg.session.until is not None and cfg.session.until.hour == 7
    assert cfg.phases[0].suites[0].timeout == 900
    assert cfg.redeploy is not None and cfg.redeploy.poll == 90


def test_environment_interpolation_with_default() -> None:
    """${NAME} reads the environment and ${NAME:-default} falls back."""
    text = MINIMAL.replace(
        'base_url = "http://127.0.0.1:9"',
        'base_url = "${URL:-http://127.0.0.1:1}"\nheaders = { Authorization = "Bearer ${TOK}" }',
    )
    cfg = config.parse(text, "c.toml", {"TOK": "s3cret"})
    assert cfg.target.base_url == "http://127.0.0.1:1"
    assert cfg.target.headers["Authorization"] == "Bearer s3cret"


def test_three_mistakes_three_lines(tmp_path: Path) -> None:
    """Three independent mistakes are reported together, each with the line of its key."""
    text = MINIMAL.replace('name = "night"', 'name = "night"\nbudget = "ten hours"')
    text = text.replace('  run = "pytest tests"', '  run = "pytest tests"\n  timeot = "5m"')
    text += '[issues]\ntracker = "jira"\n'
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    problems = info.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{path}:4: session.budget")
    assert problems[1].startswith(f"{path}:14: phase[0].suite[0].timeot: unknown key")
    assert problems[2].startswith(f"{path}:16: issues.tracker")


def test_unset_variable_is_named(tmp_path: Path) -> None:
    """An unset variable without default is an error naming it and its line."""
    text = MINIMAL.replace('"http://127.0.0.1:9"', '"${STAGING_URL}"')
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.toml", {})
    assert info.value.problems == [
        "c.toml:6: target.base_url: environment variable ${STAGING_URL} is not set"
    ]


def test_toml_syntax_error_names_line() -> None:
    """Broken TOML is one problem naming its line."""
    with pytest.raises(ConfigError) as info:
        config.parse("[session]\nname = \n", "c.toml", {})
    assert info.value.problems[0].startswith("c.toml:2: invalid TOML")


def test_nested_array_tables_are_located(tmp_path: Path) -> None:
    """A mistake in the second phase's second suite points at that suite's line."""
    text = MINIMAL + '\n[[phase]]\nname = "p2"\n  [[phase.suite]]\n  name = "a"\n  run = "x"\n'
    text += '  [[phase.suite]]\n  name = "b"\n  run = "y"\n  expect_tests = 0\n'
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.toml", {})
    assert info.value.problems[0].startswith("c.toml:22: phase[1].suite[1].expect_tests")


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """-c beats $DEPLOYLOOP_CONFIG beats ./deployloop.toml beats config/deployloop.toml."""
    (tmp_path / "config").mkdir()
    write(tmp_path / "config" / "deployloop.toml", MINIMAL)
    assert config.find_config() == Path("config/deployloop.toml")
    write(tmp_path / "deployloop.toml", MINIMAL)
    assert config.find_config() == Path("deployloop.toml")
    monkeypatch.setenv("DEPLOYLOOP_CONFIG", str(write(tmp_path / "env.toml", MINIMAL)))
    assert config.find_config() == tmp_path / "env.toml"
    assert config.find_config("deployloop.toml") == Path("deployloop.toml")


def test_missing_config_is_usage_error() -> None:
    """No config anywhere says how to make one."""
    with pytest.raises(UsageError, match="deployloop init"):
        config.find_config()


def test_starter_config_validates() -> None:
    """The config `init` writes validates as written, with four phases."""
    cfg = config.parse(starter_text(), "deployloop.toml", {})
    assert [p.name for p in cfg.phases] == [
        "infrastructure",
        "agent-pipeline",
        "business-value",
        "comprehensive",
    ]
    assert cfg.issues.tracker == "local"
    assert cfg.retest.rerun_failed and cfg.retest.flaky == "pass"


def test_repo_config_is_the_starter() -> None:
    """config/deployloop.toml is what `init` writes, as the README says."""
    repo = Path(__file__).resolve().parents[1]
    assert (repo / "config" / "deployloop.toml").read_text(encoding="utf-8") == starter_text()


def test_demo_logs_go_under_the_current_directory(tmp_path: Path) -> None:
    """The packaged demo config anchors logs at the shell's folder, never inside the package."""
    from deployloop.demo import demo_config, demo_environment

    with demo_environment("http://127.0.0.1:9", "ws://127.0.0.1:9/ws"):
        demo = demo_config()
    assert demo.session.logs_dir == str(tmp_path / "logs")
    assert demo.secrets == ()  # its own addresses and paths: masking them hides the story


def test_validate_command_exit_codes(tmp_path: Path) -> None:
    """`validate` exits 0 when good, else 2 with FILE:LINE lines and no traceback."""
    # A program validate can find whatever PATH the test runs with (it checks that now).
    good = write(tmp_path / "good.toml", MINIMAL.replace('"pytest tests"', f'"{sys.executable}"'))
    bad = write(tmp_path / "bad.toml", MINIMAL.replace('"pytest tests"', '""') + "[what]\n")
    ok = subprocess.run([sys.executable, "-m", "deployloop", "validate", "-c", str(good)],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    failed = subprocess.run([sys.executable, "-m", "deployloop", "validate", "-c", str(bad)],
                            capture_output=True, text=True)  # fmt: skip
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{bad}:") for line in lines)
    assert "Traceback" not in failed.stderr


def test_init_writes_and_refuses_overwrite(tmp_path: Path) -> None:
    """`init DIR` writes a starter config once and will not clobber it."""
    first = subprocess.run([sys.executable, "-m", "deployloop", "init", str(tmp_path / "d")],
                           capture_output=True, text=True)  # fmt: skip
    assert first.returncode == 0 and (tmp_path / "d" / "deployloop.toml").is_file()
    again = subprocess.run([sys.executable, "-m", "deployloop", "init", str(tmp_path / "d")],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("rerun_failed = false", "`[issues] rerun_failed` moved to `[retest] rerun_failed`"),
        ('flaky = "fail"', "`[issues] flaky` moved to `[retest] flaky`"),
        ("mask = ['order-\\d+']", "`[issues] mask` moved to `[clusters] mask`"),
    ],
)
def test_moved_keys_name_their_new_place(old: str, new: str) -> None:
    """A key that left [issues] is one FILE:LINE problem naming its new table, nothing else."""
    with pytest.raises(ConfigError) as info:
        config.parse(MINIMAL + f'[issues]\ntracker = "local"\n{old}\n', "c.toml", {})
    assert info.value.problems == [f"c.toml:15: {new}"]


def test_retest_and_clusters_tables_are_read() -> None:
    """[retest] rerun_failed/flaky and [clusters] mask land where the loop and triage read them."""
    text = (
        MINIMAL + "[retest]\nrerun_failed = false\nflaky = \"fail\"\n[clusters]\nmask = ['a\\d+']\n"
    )
    cfg = config.parse(text, "c.toml", {})
    assert (cfg.retest.rerun_failed, cfg.retest.flaky) == (False, "fail")
    assert cfg.clusters.mask == ["a\\d+"]


def test_default_applies_when_variable_is_empty() -> None:
    """${X:-default} with X set but empty gives the default, as the shell does."""
    text = MINIMAL.replace('"http://127.0.0.1:9"', '"${URL:-http://127.0.0.1:1}"')
    assert config.parse(text, "c.toml", {"URL": ""}).target.base_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("snippet", "environ", "line"),
    [
        ('headers = { Authorization = "Bearer ${STAGING_TOKEN:-}" }', {}, 7),
        ('headers = { Authorization = "Bearer ${STAGING_TOKEN}" }', {"STAGING_TOKEN": ""}, 7),
        ('[issues]\ntoken = "${STAGING_TOKEN}"', {"STAGING_TOKEN": ""}, 8),
    ],
)
def test_empty_credential_names_the_variable(
    snippet: str, environ: dict[str, str], line: int
) -> None:
    """A header or token whose variable came out empty is a problem naming the variable."""
    text = MINIMAL.replace(
        'base_url = "http://127.0.0.1:9"', f'base_url = "http://127.0.0.1:9"\n{snippet}'
    )
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.toml", environ)
    [problem] = info.value.problems
    assert problem.startswith(f"c.toml:{line}: ") and "${STAGING_TOKEN} is empty" in problem


def test_interpolated_values_are_secrets_and_templates_keep_names() -> None:
    """Values from ${NAME} (6+ chars) are Config.secrets; run and trigger keep ${NAME} form."""
    text = MINIMAL.replace('"pytest tests"', '"pytest --dsn-pass=${DB_PASS}"')
    text += '  env = { LEVEL = "${LEVEL}", SUITE_DB = "${SUITE_DB}" }\n'
    text += '[redeploy]\ntrigger = "deploy --key ${DEPLOY_KEY}"\n'
    environ = {
        "DB_PASS": "hunter2-pass",
        "LEVEL": "debug",
        "SUITE_DB": "pg-secret-9",
        "DEPLOY_KEY": "k3y-abcdef",
    }
    cfg = config.parse(text, "c.toml", environ)
    assert cfg.secrets == ("hunter2-pass", "k3y-abcdef", "pg-secret-9")  # "debug" is too short
    suite = cfg.phases[0].suites[0]
    assert (suite.run, suite.run_template) == (
        "pytest --dsn-pass=hunter2-pass",
        "pytest --dsn-pass=${DB_PASS}",
    )
    assert (
        cfg.redeploy is not None and cfg.redeploy.trigger_template == "deploy --key ${DEPLOY_KEY}"
    )


def test_redactor_masks_every_interpolated_value() -> None:
    """daemon.redactor_for masks config.secrets even when the variable's name looks harmless."""
    from deployloop.daemon import redactor_for

    text = MINIMAL + '  env = { SUITE_DB_PW = "${DB_PASS}" }\n'
    cfg = config.parse(text, "c.toml", {"DB_PASS": "plainword"})
    assert "plainword" not in redactor_for(cfg).redact("login as app with plainword failed")


@pytest.mark.parametrize(
    ("snippet", "line"),
    [("  run_template = 'x'\n", 13), ("  env = {}\n[redeploy]\ntrigger_template = 'x'\n", 15)],
)
def test_derived_keys_cannot_be_written(snippet: str, line: int) -> None:
    """Keys load() derives (run_template, trigger_template) are unknown keys in the file."""
    with pytest.raises(ConfigError, match=r"unknown key '(run|trigger)_template'") as info:
        config.parse(MINIMAL + snippet, "c.toml", {})
    assert info.value.problems[0].startswith(f"c.toml:{line}: ")


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    """logs_dir, suite cwd/junit, [issues] dir and the trigger's cwd anchor at the file's folder."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    text = MINIMAL.replace('name = "night"', 'name = "night"\nlogs_dir = "out"')
    text += '  cwd = "e2e"\n  junit = "reports/*.xml"\n[issues]\ndir = "../issues"\n'
    text += '[redeploy]\ntrigger = "./deploy.sh"\n'
    path = write(project / "deployloop.toml", text)
    os.chdir(elsewhere)
    cfg = config.load(path)
    suite = cfg.phases[0].suites[0]
    assert cfg.session.logs_dir == str(project / "out")
    assert (suite.cwd, suite.junit) == (
        str(project / "e2e"),
        str(project / "e2e" / "reports" / "*.xml"),
    )
    assert cfg.issues.dir == str(tmp_path / "issues")
    assert cfg.redeploy is not None and cfg.redeploy.cwd == str(project)


def test_validate_warns_about_a_run_line_whose_results_it_cannot_find(tmp_path: Path) -> None:
    """Item 7: a non-pytest run line without junit = is warned about (exit 0, FILE:LINE);
    pytest behind shell syntax is not."""
    blind = MINIMAL.replace('"pytest tests"', f'"{sys.executable} -c pass"')
    shell = MINIMAL.replace('"pytest tests"', f'"cd . && X=1 {sys.executable} -m pytest tests"')
    said = {}
    for name, text in (("blind", blind), ("shell", shell)):
        path = write(tmp_path / f"{name}.toml", text)
        done = subprocess.run([sys.executable, "-m", "deployloop", "validate", "-c", str(path)],
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        said[name] = done.stdout + done.stderr
    assert re.search(r"blind\.toml:\d+: phase\[0\]\.suite\[0\]\.run: warning: ", said["blind"])
    assert "warning" not in said["shell"]


@pytest.mark.parametrize(
    ("run", "env", "line"),
    [
        ("pytest -n 4 --dist each tests", "", 12),
        ("pytest -n 4 '--dist=each' tests", "", 12),
        ("pytest -n 4 tests", '\n  env = { PYTEST_ADDOPTS = "-p xdist --dist  each" }', 13),
    ],
)
def test_dist_each_is_refused_with_its_line(run: str, env: str, line: int) -> None:
    """pytest-xdist's ``--dist each`` in the run line or the suite's PYTEST_ADDOPTS: one test's
    runs on two workers would read as retries; refused before the night, naming the line."""
    text = MINIMAL.replace('  run = "pytest tests"', f'  run = "{run}"{env}')
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.toml", {})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"c.toml:{line}: phase[0].suite[0].")
    assert "--dist each runs every test on every xdist worker" in info.value.problems[0]


def test_other_dist_modes_and_lookalikes_are_taken() -> None:
    """``--dist load``, ``--dist eachfile`` (not xdist's) and a test named "each" pass."""
    taken = ("pytest -n 4 --dist load tests", "pytest --dist eachfile", "pytest --dist=each-x")
    for run in (*taken, "pytest -k each"):
        config.parse(MINIMAL.replace('  run = "pytest tests"', f'  run = "{run}"'), "c.toml", {})
