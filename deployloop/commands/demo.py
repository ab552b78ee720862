"""``deployloop demo``: the whole overnight story on this machine, in under a minute."""

from __future__ import annotations

from pathlib import Path

from deployloop import daemon
from deployloop.console import Console
from deployloop.demo import demo_config, demo_environment
from deployloop.live import make_sinks
from deployloop.plan import build_plan
from deployloop.session import RunOptions


def run(config_path: Path | None = None) -> int:
    """The story on the shipped config, or on ``config_path`` (its ${DEPLOYLOOP_DEMO_*} set)."""
    from deployloop.simulator import Simulator
    from deployloop.testing.receiver import Receiver

    console = Console()
    with (
        Simulator(bug=True) as staging,
        Receiver() as receiver,
        demo_environment(staging.base_url, staging.ws_url, receiver.json_url),
    ):
        console.line(
            f"demo staging simulator on {staging.base_url} ({staging.version}, with a bug)"
        )
        config = demo_config(config_path)
        outcome = daemon.run(config, build_plan(config), RunOptions(new=True), make_sinks(console))
        taken = receiver.received()
    console.line(f"notifications received by the demo's json:// receiver: {len(taken)}")
    for post in taken:
        console.line(
            f"  {post.body.get('title', '') if isinstance(post.body, dict) else post.body}"
        )
    console.line(f"session log: {outcome.directory / 'session.md'}")
    console.line(f"report, with the versions the night ran on: {outcome.directory / 'report.md'}")
    return outcome.exit_code
