"""Write the labeled clustering corpus: ``python -m tests.data.clusters.generate``.

Three nights of a staging run whose e2e suites use six runners (pytest, jest-junit, mocha,
go-junit-report, surefire, Playwright <= 1.58). Each night's failures carry fresh noise (ids,
pod names, hosts, durations, dates, checkout paths, orderings), as real nights do. Every
failing testcase is labeled with its root cause in ``labels.json`` (test id -> cause): the
truth a clustering is measured against (tests/corpus.py). The failure texts follow what each
runner writes (shapes taken from the handed cases in shared/cases and the runners' reporters);
the XML is committed, so this script only documents how it was made and re-makes it.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from deployloop.junit import case_id

HERE = Path(__file__).resolve().parent
NIGHTS = (1, 2, 3)
rng = random.Random(18)
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what k8s generateName draws from
ROOTS = ("/srv/e2e", "/home/runner/work/e2e/e2e", "/builds/acme/e2e", "/var/lib/ci/ws-{n}/e2e")
DOCS = ("alpha", "beta", "dark_mode", "search_v2", "exports", "sso")


# --- noise: every call is a fresh value, as in a new night ------------------------------------


def uid() -> str:
    return "%08x-%04x-4%03x-%04x-%012x" % (  # noqa: UP031 - a uuid4's shape
        rng.getrandbits(32),
        rng.getrandbits(16),
        rng.getrandbits(12),
        rng.getrandbits(16) | 0x8000 & 0xBFFF,
        rng.getrandbits(48),
    )


def hexid(n: int = 16) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def k8s(n: int) -> str:
    return "".join(rng.choice(K8S_ALPHABET) for _ in range(n))


def pod(app: str) -> str:
    return f"{app}-{k8s(rng.choice((9, 10)))}-{k8s(5)}"


def namespace(name: str) -> str:
    # Older e2e frameworks drew lowercase letters (vowels too): the masks cannot know those.
    suffix = k8s(5) if rng.random() < 0.6 else "".join(rng.choices(string.ascii_lowercase, k=5))
    return f"e2e-tests-{name}-{suffix}"


def ip() -> str:
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def email() -> str:
    return f"qa+run{rng.randint(1000, 99999)}@{rng.choice(('example.com', 'acme.test'))}"


def host(kind: str) -> str:
    return f"{kind}-{rng.randint(1, 40)}.{rng.choice(('staging', 'stg2'))}.acme.internal"


def secs() -> str:
    return f"{rng.uniform(0.2, 90):.{rng.choice((1, 2, 3))}f}s"


def millis() -> str:
    return f"{rng.randint(5, 9000)}ms"


def date() -> str:
    day, month, hour = rng.randint(1, 28), rng.randint(1, 12), rng.randint(0, 23)
    mins, secs_ = rng.randint(0, 59), rng.randint(0, 59)
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return rng.choice(
        (
            f"2025-{month:02d}-{day:02d}T{hour:02d}:{mins:02d}:{secs_:02d}"
            f".{rng.randint(0, 999):03d}Z",
            f"2025-{month:02d}-{day:02d} {hour:02d}:{mins:02d}:{secs_:02d}",
            f"Sat, {day:02d} {names[month - 1]} 2025 {hour:02d}:{mins:02d}:{secs_:02d} GMT",
            f"{month:02d}/{day:02d}/2025",
            f"{names[month - 1]} {day}, 2025",
            f"2025-{month:02d}-{day:02d}",
        )
    )


def root() -> str:
    return rng.choice(ROOTS).format(n=rng.randint(1, 9))


def shuffled(items: list[str]) -> list[str]:
    out = list(items)
    rng.shuffle(out)
    return out


# --- the runners' shapes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Test:
    """One test of a suite: where it lives and what its runner calls it."""

    classname: str
    name: str
    file: str | None = None


@dataclass(frozen=True)
class Cause:
    """One root cause: which runner's suite shows it, its tests, the nights it is seen, and
    how its failure element reads for one test on one night."""

    label: str
    runner: str
    tests: tuple[Test, ...]
    render: Callable[[Test], str]  # the <failure>/<error> element, noise fresh per call
    nights: tuple[int, ...] = NIGHTS


def attr(value: str) -> str:
    return quoteattr(value)


def failure(
    body: str, message: str | None = None, kind: str | None = None, tag: str = "failure"
) -> str:
    attrs = "" if message is None else f" message={attr(message)}"
    attrs += "" if kind is None else f" type={attr(kind)}"
    return f"<{tag}{attrs}>{escape(body)}</{tag}>"


def py_tests(module: str, names: list[str]) -> tuple[Test, ...]:
    path = f"tests/e2e/{module}.py"
    return tuple(Test(f"tests.e2e.{module}", n, path) for n in names)


def names(prefix: str, words: str) -> list[str]:
    return [f"{prefix}{w}" for w in words.split()]


# pytest ---------------------------------------------------------------------------------------


def pytest_failure(
    test: Test, message: str, e_lines: list[str], source: list[str], kind: str, after: str = ""
) -> str:
    body = "\n".join(
        [
            *source,
            *(f"E   {line}" if line else "E" for line in e_lines),
            "",
            f"{test.file}:{rng.randint(10, 300)}: {kind}",
        ]
    )
    return failure(body + ("\n" + after if after else ""), message)


def ws_closed(code: int, reason: str) -> Callable[[Test], str]:
    def render(test: Test) -> str:
        request = uid()
        message = (
            f"websockets.exceptions.ConnectionClosedError: received {code} ({reason}); "
            f"then sent {code} ({reason})"
        )
        chain = (
            "Traceback (most recent call last):\n"
            f'  File "{root()}/.venv/lib/python3.12/site-packages/websockets/asyncio/'
            'connection.py",'
            " line 322, in recv\n    return await self.recv_messages.get(decode)\n"
            "websockets.exceptions.ConnectionClosedError: "
            f"received {code} ({reason}); then sent {code} ({reason})"
        )
        source = [
            "    async def test_stream(client):",
            f"        async with client.session(request_id='{request}') as ws:",
            ">           event = await ws.recv()",
        ]
        after = (
            "----------------------------- Captured log call -----------------------------\n"
            f"INFO     e2e.ws:client.py:41 {date()} connected to wss://{ip()}:8443/ws "
            f"request={request} after {millis()}\n"
            f"ERROR    e2e.ws:client.py:77 stream broke\n{chain}"
        )
        return pytest_failure(test, message, [message], source, "ConnectionClosedError", after)

    return render


def click_oserror(test: Test) -> str:
    """A CLI helper raised OSError; the tests only see an exit code or an empty output."""
    out = f"{root()}/out/export-{hexid(6)}.json"
    shapes = [
        (
            f"assert {rng.choice((1, 2))} == 0",
            ">       assert result.exit_code == 0",
            [
                f"assert {rng.choice((1, 2))} == 0",
                " +  where 1 = <Result OSError(28, 'No space left on device')>.exit_code",
            ],
        ),
        (
            "AssertionError: assert 'Exported' in ''",
            ">       assert 'Exported' in result.output",
            [
                "AssertionError: assert 'Exported' in ''",
                " +  where '' = <Result OSError(28, 'No space left on device')>.output",
            ],
        ),
        ("assert []", ">       assert written", ["assert []"]),
    ]
    message, source_line, e_lines = rng.choice(shapes)
    source = [
        f"    def {test.name}(runner, tmp_path):",
        "        result = runner.invoke(cli, ['export', '--out', str(tmp_path)])",
        source_line,
    ]
    after = (
        "----------------------------- Captured log call -----------------------------\n"
        "ERROR    shop.export:export.py:88 export failed\n"
        "Traceback (most recent call last):\n"
        f'  File "{root()}/src/shop/export.py", line 85, in write_rows\n'
        "    handle.write(chunk)\n"
        f"OSError: [Errno 28] No space left on device: '{out}'"
    )
    return pytest_failure(test, message, e_lines, source, "AssertionError", after)


def http_status(path: str, status: int, phrase: str) -> Callable[[Test], str]:
    def render(test: Test) -> str:
        message = (
            f"assert {status} == 200\n +  where {status} = <Response [{status} {phrase}]>"
            ".status_code"
        )
        source = [
            f"    def {test.name}(api):",
            f"        response = api.get('{path}', headers={{'X-Request-Id': '{uid()}'}})",
            ">       assert response.status_code == 200",
        ]
        e_lines = [
            f"assert {status} == 200",
            f" +  where {status} = <Response [{status} {phrase}]>.status_code",
        ]
        after = (
            "----------------------------- Captured stdout call -----------------------------\n"
            f"GET https://{host('api')}{path} -> {status} in {millis()} (trace {hexid(32)})"
        )
        return pytest_failure(test, message, e_lines, source, "AssertionError", after)

    return render


def simple_py(kind: str, text: Callable[[Test], str]) -> Callable[[Test], str]:
    def render(test: Test) -> str:
        line = f"{kind}: {text(test)}"
        source = [f"    def {test.name}(api):", ">       api.check()"]
        return pytest_failure(test, line, [line], source, kind.rsplit(".", 1)[-1])

    return render


def flags_dict(_test: Test) -> str:
    keys = shuffled(["'beta': True", "'dark_mode': False", "'search_v2': True", "'exports': True"])
    regions = shuffled(["'eu-west-1'", "'us-east-2'", "'ap-south-1'"])
    return f"unexpected feature flags {{{', '.join(keys)}}} for regions {{{', '.join(regions)}}}"


def chained_db(test: Test) -> str:
    role = f"e2e_{hexid(4)}"
    db = host("db")
    inner = (
        f'connection to server at "{db}" ({ip()}), port 5432 failed: FATAL:  '
        f'too many connections for role "{role}"'
    )
    message = f"sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) {inner}"
    e_lines = [
        "psycopg2.OperationalError: " + inner,
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        message,
        "(Background on this error at: https://sqlalche.me/e/20/e3q8)",
    ]
    return pytest_failure(
        test,
        message,
        e_lines,
        [f"    def {test.name}(db):", ">       db.execute(q)"],
        "OperationalError",
    )


def xdist_crash(test: Test) -> str:
    worker = f"gw{rng.randint(0, 7)}"
    node = case_id(test.classname, test.name, test.file)
    text = f"worker '{worker}' crashed while running '{node}'"
    return failure(text, f'failed on setup with "{text}"', tag="error")


def subprocess_exit(status: int) -> Callable[[Test], str]:
    def text(_test: Test) -> str:
        tenant = f"t-{rng.randint(1000, 9999)}"
        return (
            f"Command '['{root()}/bin/seed', '--tenant', '{tenant}']' returned non-zero "
            f"exit status {status}."
        )

    return simple_py("subprocess.CalledProcessError", text)


def killed(signal: int, name: str) -> Callable[[Test], str]:
    def text(_test: Test) -> str:
        return (
            f"renderer pid {rng.randint(2000, 60000)} died with signal {signal} ({name}) "
            f"after {secs()}"
        )

    return simple_py("Failed", text)


# jest-junit -----------------------------------------------------------------------------------


def jest_status(status: int, suite: str) -> Callable[[Test], str]:
    def render(_test: Test) -> str:
        line = rng.randint(3, 40)
        return failure(
            "Error: expect(received).toBe(expected) // Object.is equality\n\n"
            f"Expected: 200\nReceived: {status}\n"
            f"    at Object.toBe ({root()}/tests/{suite}.test.js:{line}:{rng.randint(5, 70)})\n"
            "    at processTicksAndRejections (node:internal/process/task_queues:95:5)"
        )

    return render


def jest_suite(reason: Callable[[Test], str]) -> Callable[[Test], str]:
    def render(test: Test) -> str:
        return failure(
            f"Test suite failed to run\n\n    {reason(test)}\n\n"
            "      at Runtime._execModule (node_modules/jest-runtime/build/index.js:1439:24)",
            tag="error",
        )

    return render


def jest_timeout(_test: Test) -> str:
    limit = rng.choice((5000, 10000, 15000))
    return failure(
        f'thrown: "Exceeded timeout of {limit} ms for a test.\n'
        "Add a timeout value to this test to increase the timeout, if this is a long-running "
        'test. See https://jestjs.io/docs/api#testname-fn-timeout."\n'
        f"    at {root()}/tests/search.test.js:{rng.randint(3, 60)}:3"
    )


# mocha (mocha-junit-reporter) ----------------------------------------------------------------


def mocha_timeout(test: Test) -> str:
    spec = f"{root()}/test/{test.classname.split()[0]}.spec.js"
    text = (
        f"Timeout of {rng.choice((1000, 2000))}ms exceeded. For async tests and hooks, ensure "
        f'"done()" is called; if returning a Promise, ensure it resolves. ({spec})'
    )
    return failure(
        f"Error: {text}\n    at listOnTimeout (node:internal/timers:581:17)\n"
        "    at process.processTimers (node:internal/timers:519:7)",
        text,
        "Error",
    )


def mocha_redis(_test: Test) -> str:
    text = f"connect ECONNREFUSED {ip()}:6379"
    return failure(
        f"Error: {text}\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)",
        text,
        "Error",
    )


def mocha_gateway(_test: Test) -> str:
    text = f"expected 502 to equal 200 (request {uid()})"
    return failure(
        f"AssertionError: {text}\n    at Context.<anonymous> ({root()}/test/"
        f"orders.spec.js:{rng.randint(5, 80)}:31)",
        text,
        "AssertionError",
    )


# go-junit-report / gotestsum ------------------------------------------------------------------


def go_failure(test: Test, lines: list[str]) -> str:
    file = test.file or "e2e_test.go"
    body = [f"=== RUN   {test.name}"]
    body += [f"    {file}:{rng.randint(20, 300)}: {line}" for line in lines]
    body.append(f"--- FAIL: {test.name} ({rng.uniform(0.01, 9):.2f}s)")
    return failure("\n".join(body), "Failed", "")


def go_status(test: Test) -> str:
    return go_failure(
        test,
        [
            f"POST https://{host('api')}/api/checkout: unexpected status 500 Internal Server Error "
            f"(request id {hexid(24)})",
        ],
    )


def go_pod(test: Test) -> str:
    wait = rng.choice(("2m0s", "90s", "3m30s"))
    return go_failure(
        test,
        [
            f"creating namespace {namespace('deploy')}",
            f"timed out after {wait} waiting for pod {pod('web')} in namespace "
            f"{namespace('deploy')} to be Ready: phase Pending (Unschedulable: "
            f"0/{rng.randint(3, 9)} "
            "nodes are available: insufficient memory)",
        ],
    )


def go_map(test: Test) -> str:
    got = shuffled(["beta:true", "dark:false", "exports:true", "v2:true"])
    want = shuffled(["beta:true", "dark:true", "exports:true", "v2:true"])
    return go_failure(
        test, [f"flags mismatch: got map[{' '.join(got)}] want map[{' '.join(want)}]"]
    )


def go_panic(test: Test) -> str:
    addr = hexid(6)
    body = (
        f"=== RUN   {test.name}\n--- FAIL: {test.name} ({rng.uniform(0.01, 2):.2f}s)\n"
        "panic: runtime error: invalid memory address or nil pointer dereference [recovered]\n"
        "\tpanic: runtime error: invalid memory address or nil pointer dereference\n"
        f"[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x{addr}]\n\n"
        f"goroutine {rng.randint(5, 400)} [running]:\n"
        f"github.com/acme/shop/e2e.(*Client).Cart(0x0, {{0x{hexid(10)}, 0x{hexid(2)}}})\n"
        f"\t{root()}/client.go:{rng.randint(40, 90)} +0x{hexid(2)}"
    )
    return failure(body, "Failed", "")


# surefire --------------------------------------------------------------------------------------


def java_connect(_test: Test) -> str:
    text = f"Connection refused: {host('api')}/{ip()}:8443"
    return failure(
        f"java.net.ConnectException: {text}\n"
        "\tat java.base/sun.nio.ch.Net.pollConnect(Native Method)\n"
        "\tat com.acme.e2e.ApiClient.get(ApiClient.java:71)",
        text,
        "java.net.ConnectException",
        tag="error",
    )


def java_status(_test: Test) -> str:
    text = "expected: <200> but was: <503>"
    return failure(
        f"org.opentest4j.AssertionFailedError: {text}\n"
        "\tat org.junit.jupiter.api.AssertionFailureBuilder.build("
        "AssertionFailureBuilder.java:151)\n"
        f"\tat com.acme.e2e.SearchIT.search(SearchIT.java:{rng.randint(20, 99)})",
        text,
        "org.opentest4j.AssertionFailedError",
    )


def java_context(root_cause: Callable[[], str]) -> Callable[[Test], str]:
    def render(_test: Test) -> str:
        text = "Failed to load ApplicationContext"
        return failure(
            f"java.lang.IllegalStateException: {text}\n"
            "\tat org.springframework.test.context.cache.DefaultCacheAwareContextLoaderDelegate"
            ".loadContext(DefaultCacheAwareContextLoaderDelegate.java:180)\n"
            "Caused by: org.springframework.beans.factory.BeanCreationException: Error creating "
            f"bean with name 'dataSource' defined in class path resource [{root()}/app.xml]\n"
            "\tat org.springframework.beans.factory.support.AbstractBeanFactory"
            ".getBean(X.java:1)\n"
            f"Caused by: {root_cause()}\n\t... 42 more",
            text,
            "java.lang.IllegalStateException",
            tag="error",
        )

    return render


def java_empty_assert(_test: Test) -> str:
    return failure(
        "java.lang.AssertionError\n\tat org.junit.Assert.fail(Assert.java:87)\n"
        "\tat org.junit.Assert.assertTrue(Assert.java:42)\n"
        f"\tat com.acme.e2e.InventoryIT.stockIsReserved(InventoryIT.java:{rng.randint(20, 99)})\n"
        "------- Stdout: -------\n"
        f"{date()} WARN  reservation {uid()} rejected: InventoryLockTimeoutException: lock on "
        f"sku-{rng.randint(100, 999)} held by {host('worker')} for {secs()}",
        None,
        "java.lang.AssertionError",
    )


# Playwright <= 1.58 -----------------------------------------------------------------------------


def pw_header(test: Test) -> tuple[str, str]:
    where = f"{test.classname}:{rng.randint(2, 40)}:1"
    return f"{where} {test.name}", f"  {where} › {test.name} " + "─" * 60


def pw_status(test: Test) -> str:
    message, head = pw_header(test)
    return failure(
        f"{head}\n\n    Error: expect(received).toBe(expected) // Object.is equality\n\n"
        "    Expected: 200\n    Received: 500\n\n"
        f"    > 3 |   expect((await request.get('/api/agents/{uid()}')).status()).toBe(200);\n"
        f"        at {root()}/tests/{test.classname}:{rng.randint(2, 40)}:55\n",
        message,
        "FAILURE",
    )


def pw_click(test: Test) -> str:
    message, head = pw_header(test)
    return failure(
        f"{head}\n\n    Error: locator.click: Timeout {rng.choice((15000, 30000))}ms exceeded.\n"
        "    Call log:\n      - waiting for getByRole('button', { name: 'Sign in' })\n\n"
        f"        at {root()}/tests/{test.classname}:{rng.randint(2, 40)}:20\n",
        message,
        "FAILURE",
    )


def pw_text(test: Test) -> str:
    message, head = pw_header(test)
    return failure(
        f"{head}\n\n    Error: Timed out {rng.choice((5000, 10000))}ms waiting for "
        "expect(locator).toHaveText(expected)\n\n"
        f'    Expected string: "Welcome, {email()}"\n    Received string: "Something went wrong"\n'
        f"    Call log:\n      - expect.toHaveText with timeout {rng.choice((5000, 10000))}ms\n",
        message,
        "FAILURE",
    )


# --- the causes ---------------------------------------------------------------------------------


def jest_tests(suite: str, titles: str) -> tuple[Test, ...]:
    return tuple(Test(f"{suite} {t}", f"{suite} {t}") for t in titles.split(","))


def mocha_tests(suite: str, titles: str) -> tuple[Test, ...]:
    return tuple(Test(f"{t}", f"{suite} {t}") for t in titles.split(","))


def go_tests(pkg: str, file: str, names_: str) -> tuple[Test, ...]:
    return tuple(Test(f"github.com/acme/shop/e2e/{pkg}", n, file) for n in names_.split())


def java_tests(cls: str, methods: str) -> tuple[Test, ...]:
    return tuple(Test(f"com.acme.e2e.{cls}", m) for m in methods.split())


def pw_tests(spec: str, titles: str) -> tuple[Test, ...]:
    return tuple(Test(spec, t) for t in titles.split(","))


def quoted(kind: str, template: str, values: list[str]) -> Callable[[Test], str]:
    return simple_py(kind, lambda _t: template.format(rng.choice(values)))


CAUSES: tuple[Cause, ...] = (
    Cause(
        "ws-close-1011",
        "pytest",
        py_tests(
            "test_stream",
            names(
                "test_stream_",
                "chat tools plan files search memory agents logs metrics cancel resume handoff",
            ),
        ),
        ws_closed(1011, "internal error"),
    ),
    Cause(
        "ws-close-1006",
        "pytest",
        py_tests("test_presence", names("test_presence_", "join leave typing idle away")),
        ws_closed(1006, "abnormal closure"),
        (2, 3),
    ),
    Cause(
        "export-disk-full",
        "pytest",
        py_tests(
            "test_export",
            names("test_export_", "csv json xlsx parquet pdf zip gzip empty unicode large split"),
        ),
        click_oserror,
    ),
    Cause(
        "orders-500",
        "pytest",
        py_tests("test_orders", names("test_orders_", "list get create cancel refund")),
        http_status("/api/orders", 500, "Internal Server Error"),
    ),
    Cause(
        "billing-404",
        "pytest",
        py_tests("test_billing", names("test_billing_", "invoices plans usage")),
        http_status("/api/billing", 404, "Not Found"),
    ),
    Cause(
        "crashloop",
        "pytest",
        py_tests("test_rollout", names("test_rollout_", "web worker cron")),
        simple_py(
            "RuntimeError",
            lambda _t: (
                f"pod {pod('web')} in namespace "
                f"{namespace('checkout')} is CrashLoopBackOff (restarts: {rng.randint(3, 9)}, last "
                f"exit code 137)"
            ),
        ),
    ),
    Cause(
        "flags-drift",
        "pytest",
        py_tests("test_flags", names("test_flags_", "home cart search")),
        simple_py("AssertionError", flags_dict),
    ),
    Cause(
        "agent-timeout",
        "pytest",
        py_tests("test_agents", names("test_agent_", "completes streams retries cancels")),
        simple_py(
            "TimeoutError",
            lambda _t: (
                "agent_completed "
                f"not received within {rng.choice((30, 60))}.0s (waited {secs()}, last event at "
                f"{date()})"
            ),
        ),
    ),
    Cause(
        "invite-mail",
        "pytest",
        py_tests("test_invites", names("test_invite_", "owner admin viewer")),
        simple_py(
            "AssertionError",
            lambda _t: (
                f"invitation for {email()} was not delivered to {host('smtp')} within {millis()}"
            ),
        ),
    ),
    Cause(
        "report-missing",
        "pytest",
        py_tests("test_reports", names("test_report_", "daily weekly monthly")),
        simple_py("AssertionError", lambda _t: f"report for {date()} missing (generated {date()})"),
    ),
    Cause(
        "db-connections",
        "pytest",
        py_tests("test_accounts", names("test_account_", "signup login delete export")),
        chained_db,
    ),
    Cause(
        "xdist-crash",
        "pytest",
        py_tests("test_media", names("test_", "thumbnail_upload avatar_upload banner_upload")),
        xdist_crash,
    ),
    Cause(
        "feature-name",
        "pytest",
        py_tests("test_features", names("test_feature_", "toggle rename list")),
        quoted(
            "ValueError",
            "invalid feature name {!r}",
            ["Fancy.Feature", "dark-mode", "Search.V2", "beta_exports"],
        ),
    ),
    Cause(
        "distribution-missing",
        "pytest",
        py_tests("test_plugins", names("test_plugin_", "load scan")),
        quoted(
            "pkg_resources.DistributionNotFound",
            "The {!r} distribution was not found and is required by the application",
            ["zope.interface", "acme-sdk", "shop.plugins"],
        ),
    ),
    Cause(
        "seed-exit-3",
        "pytest",
        py_tests("test_seed", names("test_seed_", "tenants users")),
        subprocess_exit(3),
    ),
    Cause(
        "seed-exit-2",
        "pytest",
        py_tests("test_seed_cli", names("test_seed_cli_", "flags")),
        subprocess_exit(2),
        (1,),
    ),
    Cause(
        "renderer-sigkill",
        "pytest",
        py_tests("test_render", names("test_render_", "invoice label receipt")),
        killed(9, "SIGKILL"),
    ),
    Cause(
        "renderer-sigsegv",
        "pytest",
        py_tests("test_render_pdf", names("test_pdf_", "a4 letter")),
        killed(11, "SIGSEGV"),
        (3,),
    ),
    Cause(
        "agents-500",
        "jest",
        jest_tests("agents", "list agents,start agent,stop agent"),
        jest_status(500, "agents"),
    ),
    Cause(
        "jest-billing-404",
        "jest",
        jest_tests("billing", "list invoices,list plans"),
        jest_status(404, "billing"),
    ),
    Cause(
        "jest-syntax-error",
        "jest",
        (
            Test("Test suite failed to run", "src/checkout.e2e.ts"),
            Test("Test suite failed to run", "src/cart.e2e.ts"),
        ),
        jest_suite(
            lambda _t: (
                f"SyntaxError: {root()}/src/lib/api-client.ts: Unexpected token "
                f"(14:{rng.randint(2, 9)})"
            )
        ),
    ),
    Cause(
        "jest-missing-module",
        "jest",
        (
            Test("Test suite failed to run", "src/search.e2e.ts"),
            Test("Test suite failed to run", "src/suggest.e2e.ts"),
        ),
        jest_suite(lambda t: f"Cannot find module '@shop/search-client' from '{t.name}'"),
    ),
    Cause(
        "jest-search-timeout",
        "jest",
        jest_tests("search", "finds shoes,finds hats,ranks results,paginates"),
        jest_timeout,
    ),
    Cause(
        "mocha-slow",
        "mocha",
        mocha_tests(
            "reports",
            "answers within 1 s,exports within 1 s,"
            "lists within 1 s,filters within 1 s,sorts within 1 s,pages within 1 s",
        ),
        mocha_timeout,
    ),
    Cause(
        "mocha-redis-down",
        "mocha",
        mocha_tests("sessions", "stores session,renews session,drops session"),
        mocha_redis,
    ),
    Cause(
        "mocha-gateway-502",
        "mocha",
        mocha_tests("orders", "places order,tracks order"),
        mocha_gateway,
        (1, 2),
    ),
    Cause(
        "go-checkout-500",
        "go",
        go_tests(
            "checkout",
            "checkout_test.go",
            "TestCheckoutGuest TestCheckoutMember TestCheckoutCoupon TestCheckoutGiftCard",
        ),
        go_status,
    ),
    Cause(
        "go-pod-pending",
        "go",
        go_tests("deploy", "deploy_test.go", "TestDeployWeb TestDeployWorker TestDeployCron"),
        go_pod,
    ),
    Cause(
        "go-flags-map",
        "go",
        go_tests("flags", "flags_test.go", "TestFlagsDefault TestFlagsTenant"),
        go_map,
    ),
    Cause("go-nil-panic", "go", go_tests("cart", "cart_test.go", "TestCartAdd"), go_panic),
    Cause(
        "java-connect",
        "surefire",
        java_tests("OrdersIT", "listsOrders createsOrder cancelsOrder refundsOrder"),
        java_connect,
    ),
    Cause(
        "java-search-503", "surefire", java_tests("SearchIT", "search suggest facets"), java_status
    ),
    Cause(
        "java-context-db",
        "surefire",
        java_tests("AccountsIT", "opens closes"),
        java_context(
            lambda: (
                "org.postgresql.util.PSQLException: FATAL: password "
                f'authentication failed for user "e2e_{hexid(4)}"'
            )
        ),
    ),
    Cause(
        "java-context-redis",
        "surefire",
        java_tests("SessionsIT", "starts ends"),
        java_context(
            lambda: (
                "io.lettuce.core.RedisConnectionException: Unable to connect "
                f"to {host('redis')}:6379"
            )
        ),
        (2, 3),
    ),
    Cause(
        "java-inventory-lock",
        "surefire",
        java_tests("InventoryIT", "stockIsReserved stockIsReleased"),
        java_empty_assert,
    ),
    Cause(
        "agents-500",
        "playwright",
        pw_tests("agents.spec.js", "list agents,start agent,stop agent,rename agent"),
        pw_status,
    ),
    Cause(
        "pw-login-button",
        "playwright",
        pw_tests("login.spec.js", "signs in,signs in with sso,remembers me"),
        pw_click,
    ),
    Cause(
        "pw-welcome-text",
        "playwright",
        pw_tests("profile.spec.js", "greets user,greets admin"),
        pw_text,
    ),
)
PASSING = 3  # passing testcases per file: real files are mostly green


def suite_xml(runner: str, night: int) -> str:
    cases = []
    for cause in CAUSES:
        if cause.runner != runner or night not in cause.nights:
            continue
        for test in cause.tests:
            file = f' file="{test.file}"' if test.file and runner == "pytest" else ""
            cases.append(
                f"    <testcase classname={attr(test.classname)} name={attr(test.name)}{file} "
                f'time="{rng.uniform(0.01, 30):.3f}">\n      {cause.render(test)}\n    </testcase>'
            )
    for n in range(PASSING):
        cases.append(f'    <testcase classname="{runner}.green" name="passes_{n}" time="0.01"/>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
        f'  <testsuite name="{runner}" tests="{len(cases)}">\n'
        + "\n".join(cases)
        + "\n  </testsuite>\n</testsuites>\n"
    )


def labels() -> dict[str, str]:
    out: dict[str, str] = {}
    for cause in CAUSES:
        for test in cause.tests:
            key = case_id(
                test.classname, test.name, test.file if cause.runner == "pytest" else None
            )
            if key in out:
                raise ValueError(f"test id {key!r} labeled twice")
            out[key] = cause.label
    return out


def main() -> None:
    runners = sorted({cause.runner for cause in CAUSES})
    for night in NIGHTS:
        for runner in runners:
            path = HERE / f"night{night}" / f"{runner}.xml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(suite_xml(runner, night), encoding="utf-8")
    text = json.dumps(labels(), indent=1, sort_keys=True)
    (HERE / "labels.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
