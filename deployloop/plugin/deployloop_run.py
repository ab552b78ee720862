"""pytest plugin loaded by deployloop with ``-p deployloop_run``: its own report, and selection.

Standard library and pytest only: it runs inside the suite's own environment. Each job is
switched on by an environment variable deployloop sets, so it works behind any run line that
starts pytest (``cd e2e && VAR=x pytest …``, a wrapper script), passed in ``PYTEST_ADDOPTS``:

- ``DEPLOYLOOP_JUNIT``: a JUnit XML report (xunit1) written there by pytest's own writer
  (``_pytest.junitxml.LogXML``) registered a second time, so a ``--junitxml`` the user asked
  for is written too, untouched (issue 15 item 14), by the main pass only: a pass of
  deployloop's own (a selection or a shard, below) writes just deployloop's file, so the
  user's keeps the main run's whole report instead of a rerun's few tests. A sharded suite's
  first shard notes the user's path in the file ``DEPLOYLOOP_USER_JUNIT`` names, and
  deployloop writes the merged shards' report there (shards.write_users_report). A broken test's
  failure/error text ends with the tail of its captured output (at most ``OUTPUT_TAIL``
  characters), whatever the run's ``junit_logging``: an exception a test printed before a
  bare ``assert code == 0`` is the cause errorline looks for (issue 18), and pytest's default
  ``junit_logging=no`` would leave it only in the suite's log.
- ``DEPLOYLOOP_SELECT``: a file of node ids, one a line (a bare file, and ids holding the
  redaction mask in ``DEPLOYLOOP_SELECT_MASK``: see ``_Selection``); every other collected
  test is deselected, so a run line naming a path reruns only these (issue 15 item 10). The
  ``@group`` suffix pytest-xdist's ``--dist loadgroup`` adds to ids (pytest-xdist#992) is
  ignored on both sides. Files holding none of them are not even collected, when every file
  the ids name exists under pytest's rootdir, and in those files only the functions and
  classes the ids name become test items (a rerun then costs its own tests, not the suite's
  collection: 10 failed tests of 5 modules make 10 items, not 500).
- ``DEPLOYLOOP_SHARD``: a JSON file ``{"index", "count", "plan"}`` (deployloop/shards.py): only
  the tests of shard ``index`` of ``count`` run. ``plan`` maps the ids with a known duration to
  their shard; the others are dealt round-robin in sorted id order, so every shard, collecting
  the same tests in any order, computes the same partition (issue 21).

Whatever the variables, pytest-xdist's ``--dist each`` is refused (a usage error, exit 4): it
runs every test on every worker, and no report says which worker ran which record.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from _pytest.junitxml import LogXML, bin_xml_escape, mangle_test_address

_GROUP = re.compile(r"@[^\[\]:@]*$")  # "test_a@grp", not "test_a[x@y.com]"
_KEY = "_deployloop_report"
XPASS_MESSAGE = "xfail-marked test passes unexpectedly"  # junit.XPASS_MESSAGE
OUTPUT_TAIL = 8192  # characters of a broken test's captured output kept: errors print last
OUTPUT_HEADER = "\n\n--- captured output (tail) ---\n"


def plain_id(node_id: str) -> str:
    """``node_id`` without the ``@group`` suffix xdist's loadgroup appends."""
    return _GROUP.sub("", node_id)


@pytest.hookimpl(tryfirst=True)  # before pytest's junitxml plugin reads --junitxml
def pytest_configure(config: Any) -> None:
    _refuse_dist_each(config)
    if os.environ.get("DEPLOYLOOP_SELECT") or os.environ.get("DEPLOYLOOP_SHARD"):
        _note_users_report(config)
        config.option.xmlpath = None  # deployloop's own pass: the user's report is left alone
    path = os.environ.get("DEPLOYLOOP_JUNIT")
    if not path or hasattr(config, "workerinput"):  # xdist workers report through the controller
        return
    report = Report(path)
    setattr(config, _KEY, report)
    config.pluginmanager.register(report, _KEY)


DIST_EACH = (
    "deployloop: --dist each runs every test on every worker, and deployloop would read one "
    "test's runs as retries (a failure on one worker hidden by a pass on another): "
    "run one suite per environment instead"
)


def _refuse_dist_each(config: Any) -> None:
    """Raises ``pytest.UsageError`` (pytest exits 4 and prints it) for ``--dist each`` with
    workers: pytest-xdist runs a distributed session when ``dist`` is not "no" and ``tx``
    names workers (``-n N`` sets both; ``-n 0`` sets ``dist`` back to "no"), and not for
    ``--collect-only``, which it never distributes."""
    option = config.option
    each = getattr(option, "dist", "no") == "each" and getattr(option, "tx", None)
    if each and not getattr(option, "collectonly", False):
        raise pytest.UsageError(DIST_EACH)


class Report(LogXML):
    """deployloop's JUnit report: pytest's own writer, plus what deployloop reads (an xpass
    marked, a broken test's output tail), with a quick path for a clean pass.

    A test whose setup, call and teardown reports all passed, with no user properties and no
    xfail mark, is most of any suite, and ``LogXML`` spends about 45 µs on each (a node
    reporter, its elements, three duration updates): its reports are held until its teardown
    and it becomes one ``<testcase>`` written as ``_NodeReporter`` writes a pass (xunit1), in
    a third of the time, in the place its setup report gave it, as ``LogXML`` orders tests.
    Any other report replays the test's held ones through ``LogXML`` first, so every other
    test (a failure, an error, a skip, a rerun, reports interleaved by xdist) is written by
    pytest's own code, in its place, as before.
    """

    def __init__(self, path: str) -> None:
        super().__init__(path, None, family="xunit1")
        # (node id, xdist node) -> (the test's place in node_reporters_ordered, its reports)
        self.held: dict[tuple[str, Any], tuple[int | None, list[Any]]] = {}
        self.given: set[tuple[str, Any]] = set()  # tests LogXML has, until their teardown

    def pytest_runtest_logreport(self, report: Any) -> None:
        key = _key(report)
        if key in self.given:  # a subtest's report before its setup's, say: LogXML's test
            self._write(report)
            return
        place, held = self.held.pop(key, (None, []))
        ordered: list[Any] = self.node_reporters_ordered
        if _clean(report) and [r.when for r in held] == _BEFORE[report.when]:
            if report.when == "setup":
                # LogXML writes a test where its setup report came (xdist interleaves: the
                # order of one test's records from two workers is what logical.fold reads)
                place = len(ordered)
                ordered.append(None)
            if report.when != "teardown":
                self.held[key] = (place, [*held, report])
                return
            self.stats["passed"] += 1
            ordered[place] = _Pass(held[1], [*held, report])  # type: ignore[index]
            return
        self._replay(place, held)
        self._write(report)

    def _replay(self, place: int | None, held: list[Any]) -> None:
        """The held reports through ``LogXML``, the test's reporter moved to its place."""
        ordered: list[Any] = self.node_reporters_ordered
        made = len(ordered)
        for report in held:
            self._write(report)
        if place is not None and len(ordered) > made:  # made at the setup report: always
            ordered[place] = ordered.pop(made)

    def _write(self, report: Any) -> None:
        if report.when == "teardown":
            self.given.discard(_key(report))
        else:
            self.given.add(_key(report))
        super().pytest_runtest_logreport(report)
        if report.when == "call" and report.passed and hasattr(report, "wasxfail"):
            self.node_reporter(report)._add_simple("skipped", XPASS_MESSAGE)
        elif report.failed and report.when != "teardown":  # a teardown's node is closed
            _append_output(self.node_reporter(report).nodes, report)

    def pytest_sessionfinish(self) -> None:
        """A test cut short (the session interrupted) is written as ``LogXML`` would, but for
        one whose call never reported (``pytest.exit`` in it): ``LogXML`` writes that as a
        ``<testcase>`` without a name or a result, which reads as a pass. Left out, it is a
        test collected that never ran, and the run says so (``runner._not_run``)."""
        for place, reports in self.held.values():
            self._replay(place, reports)
        self.held.clear()
        ordered: list[Any] = self.node_reporters_ordered
        ordered[:] = [entry for entry in ordered if entry is not None and _named(entry)]
        super().pytest_sessionfinish()


_BEFORE = {"setup": [], "call": ["setup"], "teardown": ["setup", "call"]}


def _key(report: Any) -> tuple[str, Any]:
    """A test's reports as ``Report`` keeps them apart: its node id, and its xdist worker."""
    return report.nodeid, getattr(report, "node", None)


def _named(entry: Any) -> bool:
    """False for a test ``LogXML`` still has open without a name (no call or error recorded:
    its ``attrs`` are empty); a finished one keeps only its element (``finalize``)."""
    return getattr(entry, "attrs", None) != {}


def _clean(report: Any) -> bool:
    return bool(report.passed and not report.user_properties and not hasattr(report, "wasxfail"))


class _Pass:
    """A clean pass's ``<testcase>``: the attributes ``_NodeReporter.record_testreport`` gives
    the call's report (xunit1, no prefix), and the time of its three reports."""

    __slots__ = ("attrs",)

    def __init__(self, call: Any, reports: list[Any]) -> None:
        names = mangle_test_address(call.nodeid)
        file, line, _ = call.location
        self.attrs = {
            "classname": ".".join(names[:-1]),
            "name": bin_xml_escape(names[-1]),
            "file": file,
        }
        if line is not None:
            self.attrs["line"] = str(line)
        if hasattr(call, "url"):
            self.attrs["url"] = call.url
        self.attrs["time"] = f"{sum(getattr(r, 'duration', 0.0) for r in reports):.3f}"

    def to_xml(self) -> ET.Element:
        return ET.Element("testcase", self.attrs)


def _note_users_report(config: Any) -> None:
    """Write the absolute path of the user's ``--junitxml`` (resolved as pytest's LogXML does)
    to the file ``DEPLOYLOOP_USER_JUNIT`` names: deployloop writes the merged shards there."""
    note = os.environ.get("DEPLOYLOOP_USER_JUNIT")
    xmlpath = getattr(config.option, "xmlpath", None)
    if note and xmlpath and not hasattr(config, "workerinput"):
        path = os.path.expanduser(os.path.expandvars(xmlpath))
        with open(note, "w", encoding="utf-8") as handle:
            handle.write(os.path.normpath(os.path.abspath(path)))


def _append_output(nodes: list[Any], report: Any) -> None:
    """Add the tail of ``report``'s captured output (log, stdout, stderr) to the text of the
    last failure/error element in ``nodes`` (pytest's ElementTree nodes of one testcase)."""
    broken = [node for node in nodes if node.tag in ("failure", "error")]
    output = "".join(text for text in (report.caplog, report.capstdout, report.capstderr) if text)
    if broken and output.strip():
        broken[-1].text = (broken[-1].text or "") + bin_xml_escape(
            OUTPUT_HEADER + output[-OUTPUT_TAIL:]
        )


class _Selection:
    """The node ids a rerun asks for, read from the ``DEPLOYLOOP_SELECT`` file: whole ids; a
    bare file (``a/test_b.py``: the id deployloop gives a module that failed to collect) selects
    all of that file; an id holding ``DEPLOYLOOP_SELECT_MASK`` (deployloop.redact's mask: a
    secret in a parametrize id is masked before any id is kept) matches the whole node id with
    the mask (plain, or tagged: ``_mask_pattern``) standing for any text and the rest literal.
    Such an id may select a sibling whose id masks alike: deployloop ignores results it did not
    ask for (a sibling's tag differs)."""

    def __init__(self, ids: set[str], mask: str) -> None:
        found = _mask_pattern(mask)
        masked = {i for i in ids if found and found.search(i)}
        self.files = {i for i in ids - masked if "::" not in i}
        self.exact = ids - masked - self.files
        alternatives = (
            "(?:" + ".+".join(map(re.escape, found.split(i))) + ")" for i in masked if found
        )
        self.pattern = re.compile("|".join(alternatives), re.DOTALL) if masked else None
        self.names: dict[str, set[str] | None] = {}  # file -> names selected in it; None: all
        for node_id in ids:
            path, _, rest = node_id.partition("::")
            name = rest.split("[", 1)[0].split("::", 1)[0]
            known = self.names.setdefault(path, set())
            if known is not None and name and not (found and found.search(name)):
                known.add(name)
            else:  # a whole file, or a name the mask hides: every name in the file
                self.names[path] = None

    def __contains__(self, node_id: object) -> bool:
        if not isinstance(node_id, str):
            return False
        return (
            node_id in self.exact
            or node_id.partition("::")[0] in self.files
            or (self.pattern is not None and self.pattern.fullmatch(node_id) is not None)
        )


def _mask_pattern(mask: str) -> re.Pattern[str] | None:
    """The mask as it appears in a selected id: plain (``[REDACTED]``) or tagged by
    deployloop.redact's ``redact_id`` (``[REDACTED:0a1b2c]``, six hex digits before the mask's
    last character); None for no mask."""
    if not mask:
        return None
    return re.compile(re.escape(mask[:-1]) + "(?::[0-9a-f]{6})?" + re.escape(mask[-1]))


def _wanted(config: Any) -> _Selection | None:
    """The rerun's selection (read once per run), or None when there is none."""
    if not hasattr(config, "_deployloop_wanted"):
        listing = os.environ.get("DEPLOYLOOP_SELECT")
        selection = None
        if listing:
            with open(listing, encoding="utf-8") as handle:
                ids = {plain_id(line.rstrip("\n")) for line in handle if line.strip()}
            selection = _Selection(ids, os.environ.get("DEPLOYLOOP_SELECT_MASK", ""))
        config._deployloop_wanted = selection
    return config._deployloop_wanted  # type: ignore[no-any-return]


def _files(config: Any) -> set[str] | None:
    """Paths (relative to the rootdir) of the files the selected ids are in; None when there
    is no selection, or an id names a file that is not there (collect everything then)."""
    if not hasattr(config, "_deployloop_files"):
        wanted = _wanted(config)
        files = None if wanted is None else set(wanted.names)
        root = config.rootpath
        if files is not None and not all((root / f).is_file() for f in files):
            files = None
        config._deployloop_files = files
    return config._deployloop_files  # type: ignore[no-any-return]


def pytest_ignore_collect(collection_path: Any, config: Any) -> bool | None:
    files = _files(config)
    if files is None or collection_path == config.rootpath:
        return None
    try:
        relative = collection_path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return None
    if collection_path.is_dir():
        return None if any(f.startswith(relative + "/") for f in files) else True
    return None if relative in files else True


def _shard_of(ids: list[str]) -> set[str] | None:
    """The ids (of those collected) that belong to this shard; None when not sharded."""
    listing = os.environ.get("DEPLOYLOOP_SHARD")
    if not listing:
        return None
    with open(listing, encoding="utf-8") as handle:
        shard = json.load(handle)
    index, count, plan = int(shard["index"]), int(shard["count"]), shard["plan"]
    unknown = sorted({i for i in ids if i not in plan})
    dealt = {test: k % count + 1 for k, test in enumerate(unknown)}
    return {i for i in ids if plan.get(i, dealt.get(i)) == index}


def pytest_pycollect_makeitem(collector: Any, name: str, obj: Any) -> list[Any] | None:
    """No item for what no selected id names, in a module the selection restricts (pytest's
    own collector makes the rest; deselection below stays the rule for anything else)."""
    files = _files(collector.config)
    if files is None or collector.nodeid not in files:
        return None
    names = _wanted(collector.config).names[collector.nodeid]  # type: ignore[union-attr]
    return None if names is None or name in names else []


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    selected = _wanted(config)
    sharded = _shard_of([plain_id(item.nodeid) for item in items])
    if selected is None and sharded is None:
        return
    wanted = [
        (selected is None or plain_id(i.nodeid) in selected)
        and (sharded is None or plain_id(i.nodeid) in sharded)
        for i in items
    ]
    keep = [item for item, want in zip(items, wanted, strict=True) if want]
    dropped = [item for item, want in zip(items, wanted, strict=True) if not want]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_unconfigure(config: Any) -> None:
    report = getattr(config, _KEY, None)
    if report is not None:
        delattr(config, _KEY)
        config.pluginmanager.unregister(report)
