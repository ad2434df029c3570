"""wrk's numbers come back right: counted against a real server that counts what it received."""

import http.server
import threading
from collections.abc import Iterator

import pytest

from bench.wrk_load import run_wrk, wrk_available
from mlops_stack.ports import free_port

pytestmark = pytest.mark.skipif(not wrk_available(), reason="wrk is not installed (.ci/install_test_deps.sh)")


class _Counting(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: list[bytes] = []  # noqa: RUF012 (shared by the handler instances of one server)
    fail = False

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        status = 500 if self.fail else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[int, type[_Counting]]]:
    handler = type("Handler", (_Counting,), {"bodies": [], "fail": False})
    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield port, handler
    httpd.shutdown()


def test_wrk_posts_our_body_and_counts_what_the_server_answered(server: tuple[int, type[_Counting]]) -> None:
    port, handler = server
    result = run_wrk("127.0.0.1", port, "/invocations", b'{"inputs": [[1.0]]}', 2, 1.0)
    assert result.errors == 0
    assert result.ok > 10
    # wrk counts completed responses; the server may have received a few more that were cut off at the end.
    assert result.ok <= len(handler.bodies) <= result.ok + 2
    assert set(handler.bodies) == {b'{"inputs": [[1.0]]}'}
    assert result.seconds == pytest.approx(1.0, abs=0.2)
    assert result.requests_per_second == pytest.approx(result.ok / result.seconds)
    assert 0 < result.percentile_ms(50) <= result.percentile_ms(99)


def test_non_2xx_answers_are_errors(server: tuple[int, type[_Counting]]) -> None:
    port, handler = server
    handler.fail = True
    result = run_wrk("127.0.0.1", port, "/invocations", b"{}", 1, 1.0)
    assert result.ok == 0
    assert result.errors > 0
    assert result.errors <= len(handler.bodies) <= result.errors + 2  # the last may be cut off at the end
