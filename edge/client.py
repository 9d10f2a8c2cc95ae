"""Client for the Bacalhau public API v1, as served by `bacedge serve` or a Bacalhau orchestrator.

Both faces (`ApiClient`, `AsyncApiClient`) share one core: every endpoint is described once as
a `_Call` (method, path, query, body, parser) and each face only knows how to send it. The
client never prints and never imports click, so the CLI and the TUI can both use it.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import httpx
from pydantic import ValidationError

from edge import __version__, models

if TYPE_CHECKING:  # annotations; at run time each model loads on first use (edge.models)
    from edge.models import Execution, Job, JobHistory, NodeInfo, NodeState, SpecConfig
    from edge.models.compat import Server

__all__ = [
    "DEFAULT_API",
    "LOG_STDERR",
    "LOG_STDOUT",
    "ApiClient",
    "ApiError",
    "ApiUnreachable",
    "AsyncApiClient",
    "ClientError",
    "normalize_api_url",
    "parse_log_frame",
]

DEFAULT_API = "http://127.0.0.1:1234"
ORCHESTRATOR = "/api/v1/orchestrator"
AGENT = "/api/v1/agent"
LOG_STDOUT = 1  # ExecutionLog.Type on the logs WebSocket
LOG_STDERR = 2
USER_AGENT = f"bacedge/{__version__}"
_MAX_PAGES = 10_000  # a server that keeps handing out tokens must not loop us forever

T = TypeVar("T")


# --------------------------------------------------------------------------- errors


class ClientError(Exception):
    """Anything the client could not do; catch this to handle every client failure."""


class ApiUnreachable(ClientError):
    """The orchestrator could not be reached at all (refused, timed out, TLS failure)."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url
        self.message = message


class ApiError(ClientError):
    """The orchestrator answered with an error (`{Status, Message, Code, Component}`).

    `status` is the HTTP status, or 0 for an error reported inside the logs stream.
    `details` holds extra lines the server sent (such as one problem per spec field).
    """

    def __init__(
        self,
        status: int,
        message: str,
        code: str = "",
        component: str = "",
        details: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.component = component
        self.details = list(details)

    def __repr__(self) -> str:
        return f"ApiError(status={self.status}, message={self.message!r}, code={self.code!r})"

    def describe(self, auth_hint: str) -> str:
        """The message a person reads, with the fix for auth refusals (`auth_hint` says
        where this front end takes an API key) and one line per problem the server listed."""
        message = self.message or f"HTTP {self.status}"
        if self.status == 401:
            message += f" ({auth_hint})"
        elif self.status == 403:
            message += " (these credentials lack the capability for this)"
        return "\n".join([message, *(f"  {d}" for d in self.details if d not in message)])


# --------------------------------------------------------------------------- helpers


def normalize_api_url(url: str) -> str:
    """`host:port`, `http://host:port/` -> `http://host:port`; rejects other schemes."""
    text = url.strip().rstrip("/")
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientError(f"invalid API address {url!r}: use http://HOST:PORT or https://HOST:PORT")
    return text


def _ci(data: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """A key of a JSON object, case-insensitively: Bacalhau and bacedge differ in case here."""
    for key in keys:
        if key in data:
            return data[key]
    lowered = {k.lower(): v for k, v in data.items() if isinstance(k, str)}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()]
    return default


def _obj(body: Any) -> Mapping[str, Any]:
    return body if isinstance(body, Mapping) else {}


def _items(body: Any, *legacy: str) -> tuple[list[Any], str | None]:
    """`{Items, NextToken}`; older Bacalhau servers name the list (`Jobs`, `Executions`)."""
    if isinstance(body, list):
        return body, None
    data = _obj(body)
    items = _ci(data, "Items", *legacy)
    if isinstance(items, Mapping):  # a nested list response, e.g. GetJob's History
        return _items(items, *legacy)
    token = _ci(data, "NextToken")
    return (list(items) if isinstance(items, list) else []), (str(token) if token else None)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _params(**values: Any) -> dict[str, str]:
    """Query parameters without the unset ones; booleans the way Go parses them."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value is False or value == "":
            continue
        out[key.replace("__", "-")] = _bool(value) if isinstance(value, bool) else str(value)
    return out


def _labels(labels: str | Sequence[str] | Mapping[str, str] | None) -> str | None:
    """A label selector (`env=prod,arch!=arm`) from a string, list or mapping."""
    if labels is None:
        return None
    if isinstance(labels, str):
        return labels or None
    if isinstance(labels, Mapping):
        return ",".join(f"{k}={v}" for k, v in labels.items()) or None
    return ",".join(labels) or None


def _path_id(value: str) -> str:
    """IDs and names go in the path as typed; quoting keeps a `/` in a name from routing."""
    return quote(value, safe="")


def _error_from_body(status: int, text: str, reason: str = "", what: str = "") -> ApiError:
    """An ApiError from whatever the server said: bacedge/Bacalhau JSON, echo JSON, or text."""
    data: Any = None
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        message = _ci(data, "Message", "Error", default="") or ""
        code = str(_ci(data, "Code", default="") or "")
        component = str(_ci(data, "Component", default="") or "")
        details = _ci(data, "Details", "Errors", "Problems", default=None)
        lines: list[str] = []
        if isinstance(details, list):
            lines = [str(d) for d in details if d]
        elif isinstance(details, Mapping):
            lines = [f"{k}: {v}" for k, v in details.items()]
        if not isinstance(message, str):
            message = json.dumps(message)
        return ApiError(status, message or reason or f"HTTP {status}", code, component, lines)
    if isinstance(data, str) and data:
        return ApiError(status, data)
    # Not the API's JSON: a proxy, another web server, or a route this server lacks.
    snippet = " ".join(text.split())[:200]
    where = f"{what} " if what else ""
    message = f"{where}HTTP {status} {reason}".rstrip()
    return ApiError(status, f"{message}: {snippet}" if snippet else message)


def _unreachable(base_url: str, exc: BaseException, timeout: float | None = None) -> ApiUnreachable:
    hint = "is `bacedge serve` running? (set --api or BACEDGE_API)"
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        waited = f" within {timeout:g}s" if timeout else ""
        return ApiUnreachable(
            base_url, f"the orchestrator at {base_url} did not answer{waited}: {hint}"
        )
    text = str(exc)
    if "mismatch" in text or "not valid for" in text:
        return ApiUnreachable(
            base_url,
            f"TLS with the orchestrator at {base_url} failed ({text}): the certificate is "
            "for another name; use a name it holds or reissue it (bacedge setup tls --name)",
        )
    if isinstance(exc, ssl.SSLError) or "SSL" in text or "certificate" in text.lower():
        return ApiUnreachable(
            base_url,
            f"TLS with the orchestrator at {base_url} failed ({text}): "
            "pass its CA with --cacert, or --insecure to skip verification",
        )
    return ApiUnreachable(base_url, f"cannot reach the orchestrator at {base_url}: {hint}")


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """One TLS policy for HTTP and the logs WebSocket: CA bundle path, on, or off."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        import certifi  # httpx's own default, so HTTP and WebSocket trust the same roots

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


def _auth_headers(
    api_key: str | None, username: str | None, password: str | None
) -> dict[str, str]:
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    if username:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def parse_log_frame(message: str | bytes) -> tuple[int, str] | None:
    """One logs WebSocket frame -> (type, line); None for frames with nothing to show.

    Frames are `{"value": {"Type": 1|2, "Line": "..."}}`; `{"error": ...}` raises ApiError
    with status 0 (the error was reported inside the stream, after the HTTP upgrade).
    """
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, Mapping):
        return None
    err = _ci(data, "error", "Err")
    if err:
        text = err if isinstance(err, str) else _ci(_obj(err), "Message", default="") or str(err)
        raise ApiError(0, str(text), "LogStream")
    value = _ci(data, "value")
    entry = _obj(value) if value is not None else data
    line = _ci(entry, "Line")
    if line is None:
        return None
    try:
        kind = int(_ci(entry, "Type", default=LOG_STDOUT))
    except (TypeError, ValueError):
        kind = LOG_STDOUT
    return kind, str(line)


# --------------------------------------------------------------------------- endpoints


class SseParser:
    """Server-Sent Events lines -> events: each `data:` JSON object, with `Type` `overflow`
    for an `event: overflow` notice; comment lines (heartbeats) are skipped."""

    def __init__(self) -> None:
        self.data: list[str] = []
        self.event = ""

    def feed(self, line: str) -> dict[str, Any] | None:
        if line.startswith(":"):
            return None
        if line:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self.data.append(value)
            elif name == "event":
                self.event = value
            return None
        data, event, self.data, self.event = self.data, self.event, [], ""
        if not data:
            return None
        try:
            parsed = json.loads("\n".join(data))
        except ValueError:
            return None
        if not isinstance(parsed, dict):
            return None
        if event:
            parsed.setdefault("Type", event)
        return parsed


def _events_params(types: Sequence[str] | None, job_id: str | None) -> dict[str, str]:
    return _params(types=",".join(types) if types else None, job_id=job_id)


EVENTS_PATH = f"{ORCHESTRATOR}/events"
EVENTS_READ_TIMEOUT = 60.0  # s of silence (the server sends a comment every 15 s) = gone


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One API request and how to read its answer; both client faces send these."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    fallback: _Call[T] | None = None  # tried when the server says 405 (older route)
    meant: Callable[[Server, T], T] | None = None  # re-read by the server's version


def _executions_meant(
    server: Server, page: tuple[list[Execution], str | None]
) -> tuple[list[Execution], str | None]:
    return server.executions(page[0]), page[1]


def _history_meant(
    server: Server, page: tuple[list[JobHistory], str | None]
) -> tuple[list[JobHistory], str | None]:
    return server.history(page[0]), page[1]


def _job_meant(
    server: Server, answer: tuple[Job, list[JobHistory] | None, list[Execution] | None]
) -> tuple[Job, list[JobHistory] | None, list[Execution] | None]:
    job, history, executions = answer
    return (
        job,
        server.history(history) if history is not None else None,
        server.executions(executions) if executions is not None else None,
    )


def _raw(body: Any) -> dict[str, Any]:
    return dict(_obj(body))


def _list_of(
    model: Callable[[Any], T], *legacy: str
) -> Callable[[Any], tuple[list[T], str | None]]:
    def parse(body: Any) -> tuple[list[T], str | None]:
        items, token = _items(body, *legacy)
        return [model(item) for item in items], token

    return parse


def _parse_get_job(
    body: Any,
) -> tuple[Job, list[JobHistory] | None, list[Execution] | None]:
    data = _obj(body)
    job = models.Job.model_validate(_ci(data, "Job", default={}) or {})
    history_raw = _ci(data, "History")
    executions_raw = _ci(data, "Executions")
    history = (
        [models.JobHistory.model_validate(h) for h in _items(history_raw, "History")[0]]
        if history_raw is not None
        else None
    )
    executions = (
        [models.Execution.model_validate(e) for e in _items(executions_raw, "Executions")[0]]
        if executions_raw is not None
        else None
    )
    return job, history, executions


def _parse_node(body: Any) -> NodeState:
    data = _obj(body)
    node = _ci(data, "Node")
    return models.NodeState.model_validate(node if isinstance(node, Mapping) else data)


def _parse_agent_node(body: Any) -> NodeInfo:
    """Bacalhau answers `{NodeInfo}`; a NodeState-shaped answer is read through its Info."""
    data = _obj(body)
    inner = _ci(data, "NodeInfo", "Node")
    if isinstance(inner, Mapping):
        data = inner
    info = _ci(data, "Info")
    return models.NodeInfo.model_validate(info if isinstance(info, Mapping) else data)


def _parse_version(body: Any) -> dict[str, Any]:
    """Bacalhau's flat answer (`GitVersion`; `gitversion` in its legacy model) or an older
    one wrapped in `BuildVersionInfo`; empty fields left out."""
    data = _obj(body)
    inner = _ci(data, "BuildVersionInfo")
    info = models.BuildVersionInfo.model_validate(inner if isinstance(inner, Mapping) else data)
    return {k: v for k, v in info.model_dump().items() if v != ""}


class _Endpoints:
    """The API surface, described once. Methods return calls; nothing here does I/O."""

    @staticmethod
    def put_job(job: Mapping[str, Any], force: bool) -> _Call[dict[str, Any]]:
        return _Call("PUT", f"{ORCHESTRATOR}/jobs", _raw, body={"Job": job, "Force": force})

    @staticmethod
    def list_jobs(
        namespace: str | None,
        limit: int | None,
        next_token: str | None,
        order_by: str | None,
        reverse: bool,
        labels: str | Sequence[str] | Mapping[str, str] | None,
    ) -> _Call[tuple[list[Job], str | None]]:
        params = _params(
            namespace=namespace,
            limit=limit,
            next_token=next_token,
            order_by=order_by,
            reverse=reverse,
            labels=_labels(labels),
        )
        parse = _list_of(models.Job.model_validate, "Jobs")
        return _Call("GET", f"{ORCHESTRATOR}/jobs", parse, params)

    @staticmethod
    def get_job(
        job_id: str, include: Sequence[str]
    ) -> _Call[tuple[Job, list[JobHistory] | None, list[Execution] | None]]:
        params = _params(include=",".join(include))
        path = f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}"
        return _Call("GET", path, _parse_get_job, params, meant=_job_meant)

    @staticmethod
    def stop_job(job_id: str, reason: str | None) -> _Call[dict[str, Any]]:
        path = f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}"
        return _Call("DELETE", path, _raw, _params(reason=reason))

    @staticmethod
    def rerun_job(job_id: str) -> _Call[dict[str, Any]]:
        return _Call("PUT", f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}/rerun", _raw, body={})

    @staticmethod
    def job_history(
        job_id: str,
        since: int | str | None,
        event_type: str | None,
        execution_id: str | None,
        next_token: str | None,
    ) -> _Call[tuple[list[JobHistory], str | None]]:
        params = _params(
            since=since, event_type=event_type, execution_id=execution_id, next_token=next_token
        )
        path = f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}/history"
        parse = _list_of(models.JobHistory.model_validate, "History")
        return _Call("GET", path, parse, params, meant=_history_meant)

    @staticmethod
    def job_executions(
        job_id: str, next_token: str | None
    ) -> _Call[tuple[list[Execution], str | None]]:
        path = f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}/executions"
        parse = _list_of(models.Execution.model_validate, "Executions")
        return _Call("GET", path, parse, _params(next_token=next_token), meant=_executions_meant)

    @staticmethod
    def job_versions(job_id: str, next_token: str | None) -> _Call[tuple[list[Job], str | None]]:
        path = f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}/versions"
        parse = _list_of(models.Job.model_validate, "Jobs", "Versions")
        return _Call("GET", path, parse, _params(next_token=next_token))

    @staticmethod
    def job_results(
        job_id: str, next_token: str | None
    ) -> _Call[tuple[list[SpecConfig], str | None]]:
        path = f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}/results"
        parse = _list_of(models.SpecConfig.model_validate, "Results")
        return _Call("GET", path, parse, _params(next_token=next_token))

    @staticmethod
    def list_nodes(
        limit: int | None,
        next_token: str | None,
        order_by: str | None,
        reverse: bool,
        labels: str | Sequence[str] | Mapping[str, str] | None,
        filter_approval: str | None,
        filter_status: str | None,
    ) -> _Call[tuple[list[NodeState], str | None]]:
        params = _params(
            limit=limit,
            next_token=next_token,
            order_by=order_by,
            reverse=reverse,
            labels=_labels(labels),
            filter__approval=filter_approval,
            filter__status=filter_status,
        )
        parse = _list_of(models.NodeState.model_validate, "Nodes")
        return _Call("GET", f"{ORCHESTRATOR}/nodes", parse, params)

    @staticmethod
    def get_node(node_id: str) -> _Call[NodeState]:
        return _Call("GET", f"{ORCHESTRATOR}/nodes/{_path_id(node_id)}", _parse_node)

    @staticmethod
    def node_action(
        node_id: str, action: str, message: str | None, deadline: str | None = None
    ) -> _Call[dict[str, Any]]:
        body = {"NodeID": node_id, "Action": action, "Message": message or ""}
        if deadline is not None:  # bacedge's drain
            body["Deadline"] = deadline
        older = _Call("POST", f"{ORCHESTRATOR}/nodes", _raw, body=body)  # Bacalhau <= 1.4
        return _Call(
            "PUT", f"{ORCHESTRATOR}/nodes/{_path_id(node_id)}", _raw, body=body, fallback=older
        )

    @staticmethod
    def create_join_token(ttl: str | None) -> _Call[dict[str, Any]]:
        body = {"TTL": ttl} if ttl else {}
        return _Call("POST", f"{ORCHESTRATOR}/join-tokens", _raw, body=body)

    @staticmethod
    def agent(name: str, parse: Callable[[Any], T]) -> _Call[T]:
        return _Call("GET", f"{AGENT}/{name}", parse)

    @staticmethod
    def logs_path(
        job_id: str, execution_id: str | None, tail: bool | int, follow: bool
    ) -> tuple[str, dict[str, str]]:
        """`tail`: True starts at the end (Bacalhau's: only lines printed from now on); a
        number, only that many last lines."""
        params = _params(execution_id=execution_id, tail=tail, follow=follow)
        return f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}/logs", params


_E = _Endpoints
_VERSION = _E.agent("version", _parse_version)


class _Base:
    """Connection settings shared by both faces, and what the server is once asked.

    Executions and history are read as the server meant them: the first answer that
    carries them makes the client ask `/api/v1/agent/version` once (Bacalhau before 1.6
    numbered execution states differently, see `edge.models.compat`). A server without
    that endpoint is read as bacedge. `by_version=False` leaves answers as numbered on
    the wire, for a caller that reads the version itself (the TUI asks it per poll).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        by_version: bool = True,
    ) -> None:
        self.base_url = normalize_api_url(base_url or DEFAULT_API)
        self.by_version = by_version
        self.server: Server | None = None  # known once asked
        self.timeout = timeout
        self._verify = verify
        self._headers = {
            "User-Agent": USER_AGENT,
            **_auth_headers(api_key, username, password),
            **(headers or {}),
        }
        self._tls: ssl.SSLContext | None = None

    def _ssl(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = _ssl_context(self._verify)
        return self._tls

    def _httpx_verify(self) -> ssl.SSLContext | bool:
        if not self.base_url.startswith("https://"):
            # Plain HTTP never uses TLS: a context that verifies but trusts nothing costs
            # nothing to make, where loading the CA bundle was a sixth of `job list`'s start.
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        return self._verify if isinstance(self._verify, bool) else self._ssl()

    def _ws_url(self, path: str, params: Mapping[str, str]) -> str:
        scheme = "wss" if self.base_url.startswith("https://") else "ws"
        rest = self.base_url.split("://", 1)[1]
        query = f"?{urlencode(params)}" if params else ""
        return f"{scheme}://{rest}{path}{query}"

    def _ws_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "additional_headers": {k: v for k, v in self._headers.items() if k != "User-Agent"},
            "user_agent_header": USER_AGENT,
            "open_timeout": self.timeout,
            "max_size": 16 * 2**20,
        }
        if self.base_url.startswith("https://"):
            options["ssl"] = self._ssl()
        return options

    def _needs_server(self, call: _Call[T]) -> bool:
        return call.meant is not None and self.by_version and self.server is None

    def _meant(self, call: _Call[T], value: T) -> T:
        if call.meant is None or not self.by_version:
            return value
        from edge.models.compat import Server  # only answers read by version need it

        return call.meant(self.server or Server(), value)

    def _remember_server(self, answer: Mapping[str, Any] | ClientError) -> None:
        """What `/agent/version` said; an unreachable server is asked again next time,
        one that refuses or lacks the endpoint is read as bacedge."""
        if isinstance(answer, ApiUnreachable):
            raise answer
        from edge.models.compat import server_from_version  # only callers that need it

        self.server = server_from_version(answer if isinstance(answer, Mapping) else {})

    def _decode(self, call: _Call[T], response: httpx.Response) -> T:
        """The parsed answer, or the server's error as an ApiError."""
        if response.status_code >= 400:
            raise _error_from_body(
                response.status_code,
                response.text,
                response.reason_phrase,
                f"{self.base_url} answered {call.method} {call.path} with",
            )
        if not response.content.strip():
            body: Any = {}
        else:
            try:
                body = response.json()
            except ValueError:
                kind = response.headers.get("content-type", "unknown content")
                raise ApiError(
                    response.status_code,
                    f"{self.base_url} answered {call.method} {call.path} with {kind}, "
                    "not the Bacalhau API: does --api point at an orchestrator?",
                    "BadResponse",
                ) from None
        try:
            return call.parse(body)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ApiError(
                response.status_code,
                f"unexpected answer to {call.method} {call.path}: {where}: {first.get('msg')}",
                "BadResponse",
            ) from None


# --------------------------------------------------------------------------- sync face


class ApiClient(_Base):
    """Blocking client (CLI, scripts). Use as a context manager or call `close()`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        by_version: bool = True,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            username=username,
            password=password,
            verify=verify,
            timeout=timeout,
            headers=headers,
            by_version=by_version,
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=self._headers,
            verify=self._httpx_verify(),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        try:
            response = self._http.request(
                call.method, call.path, params=call.params or None, json=call.body
            )
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc, self.timeout) from None
        if response.status_code == 405 and call.fallback is not None:
            return self._send(call.fallback)
        value = self._decode(call, response)
        if self._needs_server(call):
            try:
                answer: Mapping[str, Any] | ClientError = self._send(_VERSION)
            except ClientError as exc:
                answer = exc
            self._remember_server(answer)
        return self._meant(call, value)

    def _all(self, make: Callable[[str | None], _Call[tuple[list[T], str | None]]]) -> list[T]:
        out: list[T] = []
        token: str | None = None
        for _ in range(_MAX_PAGES):
            items, next_token = self._send(make(token))
            out.extend(items)
            if not next_token or next_token == token:
                break
            token = next_token
        return out

    # jobs

    def put_job(self, job: Mapping[str, Any], force: bool = False) -> dict[str, Any]:
        """Submit a job spec as written (validation is the server's): `{JobID, EvaluationID,
        Warnings}`."""
        return self._send(_E.put_job(job, force))

    def list_jobs(
        self,
        namespace: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
    ) -> tuple[list[Job], str | None]:
        """One page of jobs and the token for the next page (None at the end)."""
        return self._send(_E.list_jobs(namespace, limit, next_token, order_by, reverse, labels))

    def iter_jobs(
        self,
        namespace: str | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
    ) -> Iterator[Job]:
        """Every job, fetching pages of `limit` as the caller goes."""
        token: str | None = None
        for _ in range(_MAX_PAGES):
            jobs, next_token = self.list_jobs(namespace, limit, token, order_by, reverse, labels)
            yield from jobs
            if not next_token or next_token == token:
                return
            token = next_token

    def get_job(
        self, job_id: str, include: Sequence[str] = ()
    ) -> tuple[Job, list[JobHistory] | None, list[Execution] | None]:
        """A job by ID, ID prefix or name; history/executions when asked for in `include`."""
        return self._send(_E.get_job(job_id, include))

    def stop_job(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._send(_E.stop_job(job_id, reason))

    def rerun_job(self, job_id: str) -> dict[str, Any]:
        return self._send(_E.rerun_job(job_id))

    def job_history(
        self,
        job_id: str,
        since: int | str | None = None,
        event_type: str | None = None,
        execution_id: str | None = None,
    ) -> list[JobHistory]:
        return self._all(lambda t: _E.job_history(job_id, since, event_type, execution_id, t))

    def job_executions(self, job_id: str) -> list[Execution]:
        return self._all(lambda t: _E.job_executions(job_id, t))

    def job_versions(self, job_id: str) -> list[Job]:
        return self._all(lambda t: _E.job_versions(job_id, t))

    def job_results(self, job_id: str) -> list[SpecConfig]:
        return self._all(lambda t: _E.job_results(job_id, t))

    def download_result(
        self,
        job_id: str,
        execution_id: str,
        sink: IO[bytes],
        progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Streams one execution's published result (.tar.gz) into `sink`, relayed by the
        orchestrator (a bacedge extension; a Bacalhau server answers 404). Returns bytes."""
        path = f"{ORCHESTRATOR}/jobs/{_path_id(job_id)}/executions/{_path_id(execution_id)}/result"
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, 300.0))
        try:
            with self._http.stream("GET", path, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from_body(
                        response.status_code,
                        response.text,
                        response.reason_phrase,
                        f"{self.base_url} answered GET {path} with",
                    )
                declared = response.headers.get("content-length", "")
                total = int(declared) if declared.isdigit() else None
                done = 0
                for block in response.iter_bytes(1 << 20):
                    sink.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc, self.timeout) from None
        if total is not None and done != total:
            raise ApiError(502, f"result of {execution_id} was cut short ({done}/{total} bytes)")
        return done

    def follow_events(
        self, types: Sequence[str] | None = None, job_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Lifecycle events as they happen (a bacedge extension: a Bacalhau server answers
        404, as ApiError). Ends after an event of Type `overflow` (the server dropped this
        subscriber: re-read the state, then follow again) or when the server closes."""
        timeout = httpx.Timeout(self.timeout, read=EVENTS_READ_TIMEOUT)
        params = _events_params(types, job_id)
        try:
            with self._http.stream("GET", EVENTS_PATH, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from_body(
                        response.status_code,
                        response.text,
                        response.reason_phrase,
                        f"{self.base_url} answered GET {EVENTS_PATH} with",
                    )
                parser = SseParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
                        if event.get("Type") == "overflow":
                            return
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc, EVENTS_READ_TIMEOUT) from None

    def stream_logs(
        self,
        job_id: str,
        execution_id: str | None = None,
        tail: bool | int = False,
        follow: bool = False,
    ) -> Iterator[tuple[int, str]]:
        """(LOG_STDOUT|LOG_STDERR, line) from the logs WebSocket until the server closes it.

        Lines are passed on as sent (normally ending in a newline). Stop early by closing
        the iterator (`break` in a for loop is enough).
        """
        from websockets.exceptions import (
            ConnectionClosedError,
            InvalidHandshake,
            InvalidStatus,
            InvalidURI,
        )
        from websockets.sync.client import connect

        path, params = _E.logs_path(job_id, execution_id, tail, follow)
        try:
            ws = connect(self._ws_url(path, params), **self._ws_options())
        except InvalidStatus as exc:
            raise _error_from_body(
                exc.response.status_code,
                exc.response.body.decode(errors="replace") if exc.response.body else "",
                exc.response.reason_phrase,
                f"{self.base_url} answered the logs WebSocket for {job_id} with",
            ) from None
        except InvalidURI as exc:
            raise ClientError(f"invalid logs address: {exc}") from None
        except InvalidHandshake as exc:
            raise ApiError(
                0, f"{self.base_url} refused the logs WebSocket: {exc}", "BadResponse"
            ) from None
        except (OSError, TimeoutError) as exc:
            raise _unreachable(self.base_url, exc, self.timeout) from None
        with ws:
            try:
                for message in ws:
                    entry = parse_log_frame(message)
                    if entry is not None:
                        yield entry
            except ConnectionClosedError as exc:
                raise ApiUnreachable(
                    self.base_url, f"the logs stream from {self.base_url} broke off: {exc}"
                ) from None

    # nodes

    def list_nodes(
        self,
        limit: int | None = None,
        next_token: str | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
        filter_approval: str | None = None,
        filter_status: str | None = None,
    ) -> tuple[list[NodeState], str | None]:
        return self._send(
            _E.list_nodes(
                limit, next_token, order_by, reverse, labels, filter_approval, filter_status
            )
        )

    def get_node(self, node_id: str) -> NodeState:
        return self._send(_E.get_node(node_id))

    def node_action(
        self,
        node_id: str,
        action: str,
        message: str | None = None,
        deadline: str | None = None,
    ) -> dict[str, Any]:
        """approve | reject | delete, and bacedge's cordon | uncordon | drain (with a
        deadline such as "10m"); answers `{Success, Error}` (not raised: the caller decides
        how to report a refused action)."""
        return self._send(_E.node_action(node_id, action, message, deadline))

    def create_join_token(self, ttl: str | None = None) -> dict[str, Any]:
        """A one-time join token (bacedge): `{Token, ID, CreateTime, ExpiresAt, Warning}`."""
        return self._send(_E.create_join_token(ttl))

    # agent

    def agent_alive(self) -> dict[str, Any]:
        return self._send(_E.agent("alive", _raw))

    def agent_version(self) -> dict[str, Any]:
        """The build information: `GitVersion`, `Major`, `Minor`, ... (see _parse_version)."""
        return self._send(_VERSION)

    def agent_node(self) -> NodeInfo:
        return self._send(_E.agent("node", _parse_agent_node))

    def agent_config(self) -> dict[str, Any]:
        """The answer as sent: `{config}` (Bacalhau's key names), plus `bacedge` (this
        server's own config) from a bacedge orchestrator."""
        return self._send(_E.agent("config", _raw))

    def agent_capabilities(self) -> dict[str, Any]:
        """bacedge: `{Alias, Actions, AuthRequired}` for these credentials (a Bacalhau
        server answers 404)."""
        return self._send(_E.agent("capabilities", _raw))


# --------------------------------------------------------------------------- async face


class AsyncApiClient(_Base):
    """The same API for asyncio code (the TUI): every method is awaited."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        by_version: bool = True,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            username=username,
            password=password,
            verify=verify,
            timeout=timeout,
            headers=headers,
            by_version=by_version,
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            verify=self._httpx_verify(),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params or None, json=call.body
            )
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc, self.timeout) from None
        if response.status_code == 405 and call.fallback is not None:
            return await self._send(call.fallback)
        value = self._decode(call, response)
        if self._needs_server(call):
            try:
                answer: Mapping[str, Any] | ClientError = await self._send(_VERSION)
            except ClientError as exc:
                answer = exc
            self._remember_server(answer)
        return self._meant(call, value)

    async def _all(
        self, make: Callable[[str | None], _Call[tuple[list[T], str | None]]]
    ) -> list[T]:
        out: list[T] = []
        token: str | None = None
        for _ in range(_MAX_PAGES):
            items, next_token = await self._send(make(token))
            out.extend(items)
            if not next_token or next_token == token:
                break
            token = next_token
        return out

    async def put_job(self, job: Mapping[str, Any], force: bool = False) -> dict[str, Any]:
        return await self._send(_E.put_job(job, force))

    async def list_jobs(
        self,
        namespace: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
    ) -> tuple[list[Job], str | None]:
        call = _E.list_jobs(namespace, limit, next_token, order_by, reverse, labels)
        return await self._send(call)

    async def iter_jobs(
        self,
        namespace: str | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
    ) -> AsyncIterator[Job]:
        token: str | None = None
        for _ in range(_MAX_PAGES):
            jobs, next_token = await self.list_jobs(
                namespace, limit, token, order_by, reverse, labels
            )
            for job in jobs:
                yield job
            if not next_token or next_token == token:
                return
            token = next_token

    async def get_job(
        self, job_id: str, include: Sequence[str] = ()
    ) -> tuple[Job, list[JobHistory] | None, list[Execution] | None]:
        return await self._send(_E.get_job(job_id, include))

    async def stop_job(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        return await self._send(_E.stop_job(job_id, reason))

    async def rerun_job(self, job_id: str) -> dict[str, Any]:
        return await self._send(_E.rerun_job(job_id))

    async def job_history(
        self,
        job_id: str,
        since: int | str | None = None,
        event_type: str | None = None,
        execution_id: str | None = None,
    ) -> list[JobHistory]:
        return await self._all(lambda t: _E.job_history(job_id, since, event_type, execution_id, t))

    async def job_executions(self, job_id: str) -> list[Execution]:
        return await self._all(lambda t: _E.job_executions(job_id, t))

    async def job_versions(self, job_id: str) -> list[Job]:
        return await self._all(lambda t: _E.job_versions(job_id, t))

    async def job_results(self, job_id: str) -> list[SpecConfig]:
        return await self._all(lambda t: _E.job_results(job_id, t))

    async def follow_events(
        self, types: Sequence[str] | None = None, job_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """As ApiClient.follow_events."""
        timeout = httpx.Timeout(self.timeout, read=EVENTS_READ_TIMEOUT)
        params = _events_params(types, job_id)
        try:
            async with self._http.stream(
                "GET", EVENTS_PATH, params=params, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_from_body(
                        response.status_code,
                        response.text,
                        response.reason_phrase,
                        f"{self.base_url} answered GET {EVENTS_PATH} with",
                    )
                parser = SseParser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
                        if event.get("Type") == "overflow":
                            return
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc, EVENTS_READ_TIMEOUT) from None

    async def stream_logs(
        self,
        job_id: str,
        execution_id: str | None = None,
        tail: bool | int = False,
        follow: bool = False,
    ) -> AsyncIterator[tuple[int, str]]:
        from websockets.asyncio.client import connect
        from websockets.exceptions import (
            ConnectionClosedError,
            InvalidHandshake,
            InvalidStatus,
            InvalidURI,
        )

        path, params = _E.logs_path(job_id, execution_id, tail, follow)
        try:
            ws = await connect(self._ws_url(path, params), **self._ws_options())
        except InvalidStatus as exc:
            raise _error_from_body(
                exc.response.status_code,
                exc.response.body.decode(errors="replace") if exc.response.body else "",
                exc.response.reason_phrase,
                f"{self.base_url} answered the logs WebSocket for {job_id} with",
            ) from None
        except InvalidURI as exc:
            raise ClientError(f"invalid logs address: {exc}") from None
        except InvalidHandshake as exc:
            raise ApiError(
                0, f"{self.base_url} refused the logs WebSocket: {exc}", "BadResponse"
            ) from None
        except (OSError, TimeoutError) as exc:
            raise _unreachable(self.base_url, exc, self.timeout) from None
        async with ws:
            try:
                async for message in ws:
                    entry = parse_log_frame(message)
                    if entry is not None:
                        yield entry
            except ConnectionClosedError as exc:
                raise ApiUnreachable(
                    self.base_url, f"the logs stream from {self.base_url} broke off: {exc}"
                ) from None

    async def list_nodes(
        self,
        limit: int | None = None,
        next_token: str | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
        filter_approval: str | None = None,
        filter_status: str | None = None,
    ) -> tuple[list[NodeState], str | None]:
        return await self._send(
            _E.list_nodes(
                limit, next_token, order_by, reverse, labels, filter_approval, filter_status
            )
        )

    async def get_node(self, node_id: str) -> NodeState:
        return await self._send(_E.get_node(node_id))

    async def node_action(
        self,
        node_id: str,
        action: str,
        message: str | None = None,
        deadline: str | None = None,
    ) -> dict[str, Any]:
        return await self._send(_E.node_action(node_id, action, message, deadline))

    async def agent_alive(self) -> dict[str, Any]:
        return await self._send(_E.agent("alive", _raw))

    async def agent_version(self) -> dict[str, Any]:
        return await self._send(_VERSION)

    async def agent_node(self) -> NodeInfo:
        return await self._send(_E.agent("node", _parse_agent_node))

    async def agent_config(self) -> dict[str, Any]:
        return await self._send(_E.agent("config", _raw))

    async def agent_capabilities(self) -> dict[str, Any]:
        return await self._send(_E.agent("capabilities", _raw))
