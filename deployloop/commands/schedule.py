"""``deployloop schedule``: a crontab line and a systemd service + timer that work as written.

cron and systemd start jobs with almost nothing: cron's PATH is ``/usr/bin:/bin``, neither
reads a shell profile, neither knows the project folder. So everything here is absolute: the
deployloop executable, the config, the working directory, the log file; PATH is the venv's bin
first, then the PATH of the shell that ran ``schedule``; secrets come from an environment file
(``NAME=value`` lines, read by systemd's ``EnvironmentFile=`` and by ``sh``'s ``.``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from deployloop import config as config_module
from deployloop.console import Console
from deployloop.durations import parse_clock
from deployloop.errors import NOT_FAILURES, UsageError
from deployloop.process import GRACE_S

FORMATS = ("cron", "systemd")
ENV_FILE = "deployloop.env"
LOG_FILE = "deployloop.log"
# systemd waits this long after SIGTERM before it kills what is left: deployloop's own stop
# takes the suite group's grace, the strays' grace, then the state and the report.
STOP_TIMEOUT_S = int(2 * GRACE_S + 20)
_ENV_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Job:
    """One config's nightly run, with every path absolute.

    ``name`` is the session name (unit and file names); ``path`` the PATH the job runs with.
    """

    name: str
    argv: tuple[str, ...]  # deployloop run … --log-file … --quiet
    workdir: Path
    path: str
    env_file: Path
    at: dt.time


def run(config_path: Path | None, at: str, fmt: str | None, out_dir: Path | None) -> int:
    """Write the chosen files (both formats by default) and say how to install them."""
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format must be cron or systemd, not {fmt!r}")
    try:
        clock = parse_clock(at)
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None
    path = config_module.find_config(config_path).resolve()
    config = config_module.load(path, lenient=True)  # the secrets go in the env file it writes
    job = job_for(config.session.name, path, config.session.logs_dir, clock)
    out = (out_dir or path.parent).resolve()
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    if write_env_file(job.env_file, path.read_text(encoding="utf-8")):
        console.line(f"wrote {job.env_file} (mode 600): put the secrets your config reads there")
    for name, text in files(job, fmt).items():
        (out / name).write_text(text, encoding="utf-8")
        console.line(f"wrote {out / name}")
    if config.unset:
        names = ", ".join(config.unset)
        console.line(f"not set in this shell: {names}: set them in {job.env_file} before the run")
    for line in install_hints(job, out, fmt):
        console.line(line)
    return 0


def job_for(name: str, config_path: Path, logs_dir: str, at: dt.time) -> Job:
    """The run as cron or systemd must start it from this config at ``at`` (local time)."""
    workdir = config_path.parent
    log_file = workdir / logs_dir / LOG_FILE
    argv = (*deployloop_command(), "run", "-c", str(config_path))
    argv += ("--log-file", str(log_file), "--quiet")
    return Job(name, argv, workdir, job_path(), workdir / ENV_FILE, at)


def deployloop_command() -> tuple[str, ...]:
    """How this very deployloop was started, absolute: its script, else ``python -m``."""
    script = Path(sys.argv[0])
    if script.name == "deployloop" and script.exists():
        return (str(script.absolute()),)  # absolute, not resolved: pipx's link survives upgrades
    return (str(Path(sys.executable).absolute()), "-m", "deployloop")


def job_path() -> str:
    """The venv's bin first (pytest and the suites' tools live there), then today's PATH."""
    venv_bin = str(Path(sys.executable).absolute().parent)
    parts = [venv_bin, *os.environ.get("PATH", os.defpath).split(os.pathsep)]
    return os.pathsep.join(dict.fromkeys(p for p in parts if p))


def files(job: Job, fmt: str | None) -> dict[str, str]:
    """File name → text, for ``fmt`` (None: both)."""
    stem = f"deployloop-{job.name}"
    out: dict[str, str] = {}
    if fmt in (None, "cron"):
        out[f"{stem}.cron"] = crontab(job)
    if fmt in (None, "systemd"):
        out[f"{stem}.service"] = service_unit(job)
        out[f"{stem}.timer"] = timer_unit(job, f"{stem}.service")
    return out


def cron_command(job: Job) -> str:
    """The shell command of the crontab line, before cron's ``%`` escaping.

    ``set -a`` exports what the environment file sets (a bare ``.`` would not); ``--quiet``
    makes a green night silent and a failed one a single line, which cron mails.
    """
    steps = [
        f"cd {shlex.quote(str(job.workdir))}",
        f"export PATH={shlex.quote(job.path)}",
        f"set -a && . {shlex.quote(str(job.env_file))} && set +a",
        "exec " + shlex.join(job.argv),
    ]
    return " && ".join(steps)


def crontab(job: Job) -> str:
    """A commented crontab entry; cron turns an unescaped ``%`` into a newline, hence ``\\%``."""
    quiet = ", ".join(str(code) for code in NOT_FAILURES)
    return (
        f"# deployloop: {job.name} every night at {job.at:%H:%M} (written by deployloop schedule)\n"
        f"# cron mails what a job prints to the crontab's owner (or to MAILTO=...): this job\n"
        f"# prints nothing for exit {quiet} and one verdict line for a failed night.\n"
        f"# Full log: {job.argv[job.argv.index('--log-file') + 1]}\n"
        f"{job.at.minute} {job.at.hour} * * * {cron_command(job).replace('%', chr(92) + '%')}\n"
    )


def service_unit(job: Job) -> str:
    """The service the timer starts; its exit statuses follow ``NOT_FAILURES``."""
    success = " ".join(str(code) for code in NOT_FAILURES if code)
    return (
        "[Unit]\n"
        f"Description=deployloop overnight staging loop ({job.name})\n\n"
        "[Service]\n"
        "Type=exec\n"
        f"WorkingDirectory={_unit_value(str(job.workdir))}\n"
        f'Environment="PATH={_unit_value(job.path)}"\n'
        f"EnvironmentFile={_unit_value(str(job.env_file))}\n"
        f"ExecStart={' '.join(_exec_arg(a) for a in job.argv)}\n"
        f"# 0 green, {success}: not failures (another run holds the lock; stopped on purpose).\n"
        "# 1 (gates failing), 2 (config), 3 (unreachable), 70 (crash) mark the unit failed.\n"
        f"SuccessExitStatus={success}\n"
        "# deployloop stops its suites' process groups itself (TERM, grace, KILL): mixed sends\n"
        "# TERM to deployloop only, and KILL to everything left after the stop timeout.\n"
        "KillSignal=SIGTERM\n"
        "KillMode=mixed\n"
        f"TimeoutStopSec={STOP_TIMEOUT_S}\n"
    )


def timer_unit(job: Job, service: str) -> str:
    """Starts ``service`` daily at ``job.at``; a night missed while off is not caught up."""
    return (
        "[Unit]\n"
        f"Description=Start deployloop ({job.name}) every night at {job.at:%H:%M}\n\n"
        "[Timer]\n"
        f"OnCalendar=*-*-* {job.at:%H:%M}:00\n"
        f"Unit={service}\n"
        "# false: a night missed while the machine was off is not run at boot, in the day.\n"
        "Persistent=false\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )


def _unit_value(text: str) -> str:
    """``%`` starts a systemd specifier: a literal one is ``%%``."""
    return text.replace("%", "%%")


def _exec_arg(arg: str) -> str:
    """One ExecStart argument: specifiers and ``$`` escaped, quoted when it holds spaces."""
    value = _unit_value(arg).replace("$", "$$")
    if re.search(r"[\s\"'\\]", value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def write_env_file(path: Path, config_text: str) -> bool:
    """Create the secrets file (mode 600) naming the config's ``${NAME}``s; False if it exists."""
    if path.exists():
        return False
    live = (line for line in config_text.splitlines() if not line.lstrip().startswith("#"))
    names = dict.fromkeys(name for line in live for name in _ENV_NAME.findall(line))
    lines = [
        "# Secrets and settings for the scheduled deployloop run: NAME=value, one a line,",
        "# no spaces around =, values with spaces in single quotes. Read by systemd",
        "# (EnvironmentFile=) and by sh (set -a; . this file). Keep it out of git.",
        *(f"# {name}=" for name in names),
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return True


def install_hints(job: Job, out: Path, fmt: str | None) -> list[str]:
    """The commands that put the written files to work."""
    stem = f"deployloop-{job.name}"
    hints = []
    if fmt in (None, "cron"):
        cron = shlex.quote(str(out / f"{stem}.cron"))
        hints.append(f"cron: (crontab -l 2>/dev/null; cat {cron}) | crontab -")
    if fmt in (None, "systemd"):
        units = " ".join(shlex.quote(str(out / f"{stem}.{kind}")) for kind in ("service", "timer"))
        hints.append(
            f"systemd: mkdir -p ~/.config/systemd/user && cp {units} ~/.config/systemd/user/ && "
            f"systemctl --user daemon-reload && systemctl --user enable --now {stem}.timer && "
            "loginctl enable-linger $USER"
        )
    return hints
