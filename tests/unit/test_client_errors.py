"""How the client and CLI report failures, over real HTTP and WebSocket connections.

A tiny aiohttp server on 127.0.0.1 answers the way an orchestrator does when it refuses a
request; no server at all stands for an orchestrator that is not running.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from edge.cli.main import cli
from edge.client import (
    LOG_STDERR,
    LOG_STDOUT,
    ApiClient,
    ApiError,
    ApiUnreachable,
    AsyncApiClient,
    ClientError,
    parse_log_frame,
)

PREFIX = "/api/v1/orchestrator"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TinyServer:
    """An aiohttp app on its own loop thread, recording what it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _record(self, request: web.Request) -> None:
        body = await request.text()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": json.loads(body) if body else None,
            }
        )

    def _app(self) -> web.Application:
        async def job_not_found(request: web.Request) -> web.Response:
            await self._record(request)
            job_id = request.match_info["id"]
            return web.json_response(
                {"Status": 404, "Message": f"job {job_id} not found", "Code": "NotFound"},
                status=404,
            )

        async def put_job(request: web.Request) -> web.Response:
            await self._record(request)
            job = (await request.json())["Job"]
            if job.get("Name") == "bad":
                return web.json_response(
                    {
                        "Status": 400,
                        "Message": "invalid job spec",
                        "Code": "BadRequest",
                        "Component": "api",
                        "Details": ["Tasks[0].Engine.Params.Image: required"],
                    },
                    status=400,
                )
            return web.json_response({"JobID": "j-new", "EvaluationID": "ev", "Warnings": []})

        async def jobs_text_error(request: web.Request) -> web.Response:
            await self._record(request)
            return web.Response(status=502, text="<html>Bad Gateway</html>")

        async def html_ok(request: web.Request) -> web.Response:
            return web.Response(text="<html>hello</html>", content_type="text/html")

        async def logs(request: web.Request) -> web.WebSocketResponse:
            await self._record(request)
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_json({"value": {"Type": 1, "Line": "out 1\n"}})
            await ws.send_json({"value": {"Type": 2, "Line": "err 1\n"}})
            await ws.send_json({"value": None, "error": None})  # nothing to show
            if request.match_info["id"] == "broken":
                await ws.send_json({"error": "execution e-1 has no logs"})
            await ws.close()
            return ws

        async def node_post(request: web.Request) -> web.Response:
            await self._record(request)
            return web.json_response({"Success": True, "Error": ""})

        async def agent_alive(request: web.Request) -> web.Response:
            await self._record(request)
            return web.json_response({"Status": "OK"})

        app = web.Application()
        app.add_routes(
            [
                web.get(f"{PREFIX}/jobs/{{id}}", job_not_found),
                web.put(f"{PREFIX}/jobs", put_job),
                web.get(f"{PREFIX}/jobs", jobs_text_error),
                web.get(f"{PREFIX}/jobs/{{id}}/logs", logs),
                web.get(f"{PREFIX}/nodes/{{id}}", job_not_found),  # PUT here answers 405
                web.post(f"{PREFIX}/nodes", node_post),
                web.get("/api/v1/agent/alive", agent_alive),
                web.get("/api/v1/agent/version", html_ok),
            ]
        )
        return app

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self._app())
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = int(self._runner.addresses[0][1])
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("tiny server did not start")

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[TinyServer]:
    tiny = TinyServer()
    tiny.start()
    yield tiny
    tiny.stop()


# --------------------------------------------------------------------------- unreachable


def test_closed_port_raises_api_unreachable_with_a_hint() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with ApiClient(url) as client, pytest.raises(ApiUnreachable) as caught:
        client.list_jobs()
    assert str(caught.value) == (
        f"cannot reach the orchestrator at {url}: is `bacedge serve` running? "
        "(set --api or BACEDGE_API)"
    )
    assert isinstance(caught.value, ClientError)


def test_closed_port_logs_stream_raises_api_unreachable() -> None:
    with ApiClient(f"127.0.0.1:{_closed_port()}") as client, pytest.raises(ApiUnreachable):
        next(iter(client.stream_logs("j-1")))


@pytest.mark.parametrize(
    "argv",
    [
        ["job", "list"],
        ["job", "describe", "j-1"],
        ["job", "logs", "j-1"],
        ["node", "list"],
        ["node", "approve", "n-1"],
        ["agent", "alive"],
    ],
)
def test_cli_against_closed_port_prints_one_line_and_exits_1(argv: list[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(cli, [*argv, "--api", url])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: cannot reach the orchestrator at {url}: is `bacedge serve` running? "
        "(set --api or BACEDGE_API)"
    ]


def test_bad_api_address_is_a_one_line_error() -> None:
    result = CliRunner().invoke(cli, ["job", "list", "--api", "ftp://somewhere"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: invalid API address 'ftp://somewhere': use http://HOST:PORT or https://HOST:PORT"
    )


# --------------------------------------------------------------------------- error bodies


def test_error_body_is_parsed_into_api_error(server: TinyServer) -> None:
    with ApiClient(server.url) as client, pytest.raises(ApiError) as caught:
        client.get_job("j-missing")
    error = caught.value
    assert (error.status, error.message, error.code) == (404, "job j-missing not found", "NotFound")


def test_cli_prints_the_servers_message(server: TinyServer) -> None:
    result = CliRunner().invoke(cli, ["job", "describe", "j-missing", "--api", server.url])
    assert result.exit_code == 1
    assert result.stderr == "Error: job j-missing not found\n"


def test_spec_rejected_by_server_lists_field_paths(server: TinyServer, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("Name: bad\nTasks:\n  - Engine: {Type: docker}\n")
    result = CliRunner().invoke(cli, ["job", "run", str(spec), "--api", server.url])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: invalid job spec",
        "  Tasks[0].Engine.Params.Image: required",
    ]
    sent = server.requests[-1]
    assert sent["method"] == "PUT" and sent["path"] == f"{PREFIX}/jobs"
    assert sent["body"] == {
        "Job": {"Name": "bad", "Tasks": [{"Engine": {"Type": "docker"}}]},
        "Force": False,
    }


def test_non_json_error_names_the_request(server: TinyServer) -> None:
    with ApiClient(server.url) as client, pytest.raises(ApiError) as caught:
        client.list_jobs()
    assert caught.value.status == 502
    assert str(caught.value) == (
        f"{server.url} answered GET {PREFIX}/jobs with HTTP 502 Bad Gateway: "
        "<html>Bad Gateway</html>"
    )


def test_a_page_that_is_not_the_api_is_reported(server: TinyServer) -> None:
    with ApiClient(server.url) as client, pytest.raises(ApiError, match="not the Bacalhau API"):
        client.agent_version()


def test_auth_headers_are_sent(server: TinyServer) -> None:
    with ApiClient(server.url, api_key="s3cret") as client:
        assert client.agent_alive() == {"Status": "OK"}
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer s3cret"
    with ApiClient(server.url, username="ops", password="pw") as client:
        client.agent_alive()
    assert server.requests[-1]["headers"]["Authorization"] == "Basic b3BzOnB3"


def test_node_action_falls_back_to_the_older_route(server: TinyServer) -> None:
    with ApiClient(server.url) as client:
        answer = client.node_action("n-1", "approve", "looks fine")
    assert answer == {"Success": True, "Error": ""}
    sent = server.requests[-1]
    assert (sent["method"], sent["path"]) == ("POST", f"{PREFIX}/nodes")
    assert sent["body"] == {"NodeID": "n-1", "Action": "approve", "Message": "looks fine"}


def test_wasm_run_no_wait_sends_the_job_and_prints_the_id(
    server: TinyServer, tmp_path: Path
) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0")
    argv = ["wasm", "run", str(module), "--no-wait", "--id-only", "--api", server.url]
    result = CliRunner().invoke(cli, [*argv, "--env", "A=1", "--", "x", "-y"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "j-new\n"
    task = server.requests[-1]["body"]["Job"]["Tasks"][0]
    assert task["Engine"]["Params"] == {"EntryModule": "main.wasm", "Parameters": ["x", "-y"]}
    assert task["InputSources"][0]["Target"] == "/main.wasm"
    assert task["Env"] == {"A": "1"}


# --------------------------------------------------------------------------- logs stream


def test_logs_stream_yields_typed_lines(server: TinyServer) -> None:
    with ApiClient(server.url) as client:
        lines = list(client.stream_logs("j-1", execution_id="e-1", follow=True))
    assert lines == [(LOG_STDOUT, "out 1\n"), (LOG_STDERR, "err 1\n")]
    assert server.requests[-1]["query"] == {"execution_id": "e-1", "follow": "true"}


def test_error_frame_raises_api_error(server: TinyServer) -> None:
    with ApiClient(server.url) as client, pytest.raises(ApiError, match="has no logs") as caught:
        list(client.stream_logs("broken"))
    assert caught.value.status == 0


def test_cli_logs_split_stdout_and_stderr(server: TinyServer) -> None:
    result = CliRunner().invoke(cli, ["job", "logs", "broken", "--api", server.url])
    assert result.exit_code == 1
    assert result.stdout == "out 1\n"
    assert result.stderr == "err 1\nError: execution e-1 has no logs\n"


def test_log_frames_in_either_case() -> None:
    assert parse_log_frame('{"Value": {"type": 2, "line": "x"}}') == (LOG_STDERR, "x")
    assert parse_log_frame('{"value": {}, "error": {}}') is None  # Go's empty error
    assert parse_log_frame("not json") is None


# --------------------------------------------------------------------------- async face


async def test_async_client_reports_the_same_errors(server: TinyServer) -> None:
    async with AsyncApiClient(server.url) as client:
        with pytest.raises(ApiError, match="job j-x not found"):
            await client.get_job("j-x")
        lines = [line async for line in client.stream_logs("j-1")]
    assert lines == [(LOG_STDOUT, "out 1\n"), (LOG_STDERR, "err 1\n")]
    async with AsyncApiClient(f"http://127.0.0.1:{_closed_port()}") as client:
        with pytest.raises(ApiUnreachable):
            await client.agent_alive()
