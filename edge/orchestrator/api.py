"""The Bacalhau public API v1 over aiohttp: same paths, query names and response keys."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from edge import selectors
from edge.appliance import status as appliance_status
from edge.auth import ACTIONS
from edge.config import Config
from edge.jobspec import SpecError, unwrap_job
from edge.models import (
    ComputeStateType,
    Constraint,
    Execution,
    Job,
    JobStateType,
    NodeConnection,
    NodeInfo,
    NodeMembership,
    NodeState,
)
from edge.models.durations import parse_duration
from edge.models.version import this_build
from edge.tasks import cancel_and_wait
from edge.transport.messages import FROM_END

from .agent_config import bacalhau_config
from .auth import ANONYMOUS, Authenticator, Caller, Refusal
from .errors import BadRequest, Conflict, NotFound, OrchestratorError, Unavailable
from .events import CLOSED, OVERFLOW, TooManySubscribers, matcher, parse_types
from .identities import DEFAULT_TTL, TooManyTokens
from .openapi import openapi_document
from .pagination import decode_token, encode_token, parse_limit
from .results import ResultRelay
from .routes import PREFIX, ROUTES, Route
from .service import Orchestrator

log = logging.getLogger("bacedge.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

EVENTS_HEARTBEAT = 15.0  # s between comment lines on an idle event stream
EVENTS_POLL = 1.0  # s between checks that an idle subscriber is still connected
EVENTS_SNDBUF = 64 * 1024  # bytes of socket send buffer per subscriber
EVENTS_STALL = 5.0  # s an overflowed subscriber's stalled write may take before it is cut
LOG_STREAMS = 64  # `job logs` WebSockets open at once (a node reader each); 503 beyond


def error_body(status: int, message: str, code: str) -> dict[str, Any]:
    return {"Status": status, "Message": message, "Code": code, "Component": "orchestrator"}


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, or BadRequest for anything that is not JSON a handler can
    walk (bad syntax, bad encoding, nesting deep enough to exhaust the parser)."""
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SpecError as exc:
        body = error_body(400, "invalid job spec: " + "; ".join(exc.problems), "InvalidJobSpec")
        body["Details"] = exc.problems
        return _json(body, 400)
    except OrchestratorError as exc:
        return _json(error_body(exc.status, str(exc), exc.code), exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json(
            error_body(exc.status, exc.reason or "error", exc.__class__.__name__), exc.status
        )
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        return _json(
            error_body(500, "internal error: see the orchestrator's log", "InternalError"), 500
        )


def auth_middleware(authenticator: Authenticator, routes: Mapping[Any, Route]) -> Any:
    """Asks the matched route what it needs (routes.py) and the caller's credentials who it
    is: 401 for missing or wrong credentials, 403 without the capability, both before the
    handler runs, so a refused request changes nothing. Each refusal is one log line."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = routes.get(request.match_info.route)
        if route is None or route.public:  # not found, wrong method: the router answers
            return await handler(request)
        who = await authenticator.identify(request.headers.get("Authorization"))
        if isinstance(who, Refusal):
            _refused(request, 401, who.reason)
            response = _json(error_body(401, who.message, "Unauthorized"), 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="bacedge", Basic realm="bacedge"'
            return response
        if route.capability in ACTIONS and route.capability not in who.actions:
            needed = route.capability
            _refused(request, 403, f"user {who.name!r} lacks {needed}", who.name)
            message = f"user {who.name!r} does not have the required capability {needed!r}"
            return _json(error_body(403, message, "Forbidden"), 403)
        request[CALLER] = who
        return await handler(request)

    return middleware


CALLER = web.RequestKey("bacedge.caller", Caller)  # whom the middleware identified


def _refused(request: web.Request, status: int, reason: str, user: str = "") -> None:
    extra: dict[str, Any] = {"status": status, "remote": request.remote or ""}
    if user:
        extra["user"] = user
    log.warning(f"refused {request.method} {request.path}: {reason}", extra=extra)


class Api:
    def __init__(
        self,
        orchestrator: Orchestrator,
        config: Config,
        node_info: Callable[[], NodeInfo],
        relay: ResultRelay | None = None,
        store_health: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.orch = orchestrator
        self.config = config
        self.node_info = node_info
        self.relay = relay
        self.store_health = store_health  # the local S3 store's, when this process runs one
        self.appliance_status = appliance_status.STATUS
        self.auth = Authenticator(config.api)
        self._log_streams = 0

    def app(self) -> web.Application:
        """The aiohttp app: exactly the routes of routes.ROUTES, each behind its capability."""
        matched: dict[Any, Route] = {}
        app = web.Application(
            middlewares=[errors_middleware, auth_middleware(self.auth, matched)],
            client_max_size=64 * 1024 * 1024,
        )
        for route in ROUTES:
            added = app.router.add_route(route.method, route.path, getattr(self, route.handler))
            matched[added] = route
        app.on_shutdown.append(self._end_event_streams)
        return app

    async def _end_event_streams(self, _app: web.Application) -> None:
        self.orch.events.close_all()

    # -- agent ----------------------------------------------------------------
    async def alive(self, _request: web.Request) -> web.Response:
        body: dict[str, Any] = {"Status": "OK"}
        store = self.store_health() if self.store_health is not None else None
        if store is not None:
            body["Store"] = store  # bacedge's addition; Status keeps Bacalhau's meaning
        appliance = appliance_status.read(self.appliance_status)
        if appliance is not None:
            body["Appliance"] = appliance  # the boot health check's verdict on an appliance
        return _json(body)

    async def version(self, _request: web.Request) -> web.Response:
        """Bacalhau embeds BuildVersionInfo in its answer: the keys are at the top level."""
        return _json(this_build().wire())

    async def agent_node(self, _request: web.Request) -> web.Response:
        return _json(self.node_info().wire())

    async def agent_config(self, _request: web.Request) -> web.Response:
        """`config` holds Bacalhau's key names (`types.Bacalhau`); `bacedge` holds this
        process's own config as `bacedge config show` prints it. Secrets are masked."""
        info = self.node_info()
        node = info if info.NodeType == "Compute" else None
        return _json(
            {"config": bacalhau_config(self.config, node), "bacedge": self.config.masked()}
        )

    async def metrics(self, _request: web.Request) -> web.Response:
        """Prometheus text exposition of this orchestrator's figures (docs/metrics.md)."""
        from edge.metrics import CONTENT_TYPE, render

        return web.Response(
            body=render(self.orch.metrics.registry), headers={"Content-Type": CONTENT_TYPE}
        )

    async def openapi(self, _request: web.Request) -> web.Response:
        return _json(openapi_document(self.auth.enabled))

    async def capabilities(self, request: web.Request) -> web.Response:
        """bacedge: who the credentials name and what they allow, so a front end offers
        only what it may do (the TUI hides the rest)."""
        caller = request.get(CALLER) or ANONYMOUS
        return _json(
            {
                "Alias": caller.name,
                "Actions": [a for a in ACTIONS if a in caller.actions],
                "AuthRequired": self.auth.enabled,
            }
        )

    # -- jobs -----------------------------------------------------------------
    async def put_job(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object {Job, Force}")
        force = any(str(k).lower() == "force" and v is True for k, v in body.items())
        job, evaluation_id, warnings = await self.orch.submit(unwrap_job(body), force)
        return _json({"JobID": job.ID, "EvaluationID": evaluation_id, "Warnings": warnings})

    async def list_jobs(self, request: web.Request) -> web.Response:
        q = request.query
        limit = parse_limit(q.get("limit"))
        offset = decode_token(q.get("next_token"))
        labels, _ = _selector(q.getall("labels", []))
        namespace = q.get("namespace", "")
        namespace = "" if namespace in ("*", "") else namespace
        states = [s for s in q.get("state", "").split(",") if s]
        jobs, more = await self.orch.store.list_jobs(
            namespace=namespace,
            limit=limit,
            offset=offset,
            order_by=q.get("order_by", ""),
            reverse=_bool(q, "reverse"),
            labels=labels,
            states=_job_states(states),
        )
        live = self.orch.jobs
        items = [(live.get(j.ID) or j).wire() for j in jobs]
        token = encode_token(offset + len(jobs)) if more else ""  # a page may end early
        return _json({"Items": items, "NextToken": token})

    async def _job(self, request: web.Request) -> Any:
        return await self.orch.resolve(request.match_info["id"], request.query.get("namespace"))

    async def get_job(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        version = _job_version(request.query.get("job_version", ""))
        if version and version != job.Version:  # as Bacalhau: that version of the spec
            found = await self.orch.store.job_version(job.ID, version)
            if found is None:
                raise NotFound(f"job {job.ID} has no version {version} (latest: {job.Version})")
            job = found
        out: dict[str, Any] = {"Job": job.wire()}
        include = {p.strip().lower() for p in request.query.get("include", "").split(",")}
        # Bacalhau nests these as list responses: {"Items": [...], "NextToken": ""}.
        if "history" in include:
            history = await self.orch.store.history(job.ID)
            if version:
                history = [h for h in history if h.JobVersion == version]
            out["History"] = {"Items": [h.wire() for h in history], "NextToken": ""}
        if "executions" in include:
            executions = await self.orch.executions_of(job.ID)
            if version:
                executions = [e for e in executions if e.JobVersion == version]
            out["Executions"] = {"Items": [e.wire() for e in executions], "NextToken": ""}
        return _json(out)

    async def stop_job(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        evaluation = await self.orch.stop_job(job.ID, request.query.get("reason", ""))
        return _json({"EvaluationID": evaluation})

    async def rerun_job(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        reason = request.query.get("reason", "")
        if request.can_read_body:
            body = await read_json(request)
            given = body.get("Reason", reason) if isinstance(body, dict) else reason
            if not isinstance(given, str):
                raise BadRequest("Reason must be a string")
            reason = given
        job, evaluation = await self.orch.rerun(job.ID, reason)
        return _json({"JobID": job.ID, "JobVersion": job.Version, "EvaluationID": evaluation})

    async def job_history(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        q = request.query
        try:
            since = int(q.get("since", "0") or 0)
        except ValueError:
            raise BadRequest("invalid since: use unix nanoseconds") from None
        items = await self.orch.store.history(
            job.ID, since, q.get("event_type", ""), q.get("execution_id", "")
        )
        if version := _job_version(q.get("job_version", "")):
            items = [h for h in items if h.JobVersion == version]
        return self._page(request, [h.wire() for h in items])

    async def job_executions(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        executions = await self.orch.executions_of(job.ID)
        if version := _job_version(request.query.get("job_version", "")):
            executions = [e for e in executions if e.JobVersion == version]
        if _bool(request.query, "reverse"):
            executions = executions[::-1]
        return self._page(request, [e.wire() for e in executions])

    async def job_versions(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        offset = decode_token(request.query.get("next_token"))
        versions, more = await self.orch.store.job_versions(
            job.ID, parse_limit(request.query.get("limit")), offset
        )
        token = encode_token(offset + len(versions)) if more else ""
        return _json({"Items": [v.wire() for v in versions], "NextToken": token})

    async def job_results(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        executions = await self.orch.executions_of(job.ID)
        items = [
            e.PublishedResult.wire()
            for e in executions
            if e.state == ComputeStateType.COMPLETED and e.PublishedResult.Type
        ]
        return self._page(request, items)

    async def execution_result(self, request: web.Request) -> web.StreamResponse:
        """One execution's published result as .tar.gz, relayed from its node or store."""
        job = await self._job(request)
        wanted = request.match_info["execution"]
        executions = await self.orch.executions_of(job.ID)
        matches = [e for e in executions if e.ID == wanted or e.ID.startswith(wanted)]
        if len(matches) != 1:
            what = "matches several executions" if matches else "is not an execution"
            raise NotFound(f"{wanted!r} {what} of job {job.ID}")
        if self.relay is None:
            raise NotFound("this orchestrator does not relay results")
        size, chunks = await self.relay.archive(matches[0])
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/gzip",
                "Content-Disposition": f'attachment; filename="{matches[0].ID}.tar.gz"',
            }
        )
        if size is not None:
            response.content_length = size
        await response.prepare(request)
        async for block in chunks:
            await response.write(block)
        await response.write_eof()
        return response

    def _page(self, request: web.Request, items: list[Any]) -> web.Response:
        limit = parse_limit(request.query.get("limit"), default=len(items) or 1)
        offset = decode_token(request.query.get("next_token"))
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return _json({"Items": page, "NextToken": encode_token(offset + limit) if more else ""})

    async def job_logs(self, request: web.Request) -> web.WebSocketResponse:
        job = await self._job(request)
        q = request.query
        tail, follow = _tail(q.get("tail", "")), _bool(q, "follow")  # a 400 before the upgrade
        if self._log_streams >= LOG_STREAMS:
            raise Unavailable(
                f"{LOG_STREAMS} log streams are open already: try again when one has ended"
            )
        self._log_streams += 1
        try:
            return await self._stream_logs(request, job, tail, follow)
        finally:
            self._log_streams -= 1

    async def _stream_logs(
        self, request: web.Request, job: Job, tail: int, follow: bool
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)

        async def send() -> None:
            execution_id = request.query.get("execution_id", "")
            lines = self.orch.stream_logs(job, execution_id, follow, tail)
            try:
                async for kind, line in lines:
                    await ws.send_str(json.dumps({"value": {"Type": kind, "Line": line}}))
            except OrchestratorError as exc:
                await ws.send_str(json.dumps({"error": str(exc)}))
            except ConnectionResetError:
                pass  # the client went away while a line was on its way
            finally:
                await lines.aclose()  # its NATS subscription goes now, not when collected

        # The client sends nothing: what it sends back is its close, or (missing pongs) its
        # connection's loss. Either ends the stream, even one of a quiet followed task that
        # would otherwise wait for a line to notice (a subscription and a node's reader
        # held per departed client).
        sending = asyncio.create_task(send(), name="job-logs")
        closing = asyncio.create_task(ws.receive(), name="job-logs-peer")
        try:
            await asyncio.wait({sending, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait([sending, closing])
            if not ws.closed:
                with contextlib.suppress(ConnectionResetError):
                    await ws.close()
        return ws

    # -- events ---------------------------------------------------------------
    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events of lifecycle changes (docs/api.md); bounded per subscriber."""
        q = request.query
        try:
            types = parse_types(q.get("types", ""))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        try:
            sub = self.orch.events.subscribe(matcher(types, q.get("job_id", "")))
        except TooManySubscribers as exc:
            raise Unavailable(str(exc)) from None
        ended = False

        def cut() -> None:  # a subscriber too slow to take even the overflow notice
            if not ended and request.transport is not None:
                log.warning(
                    "event subscriber stalled; disconnected", extra={"peer": request.remote}
                )
                request.transport.abort()

        def overflowed() -> None:
            asyncio.get_running_loop().call_later(EVENTS_STALL, cut)

        sub.on_overflow = overflowed
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        response.force_close()
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:  # kernel memory per subscriber bounded too (no autotuning to MiBs)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, EVENTS_SNDBUF)
        try:
            await response.prepare(request)
            await response.write(b": bacedge events (Last-Event-ID is not replayed)\n\n")
            quiet = 0.0
            while True:
                event = await sub.next(EVENTS_POLL)
                if event is None:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break  # the subscriber left: free its place now, not at the next write
                    quiet += EVENTS_POLL
                    if quiet >= EVENTS_HEARTBEAT:
                        quiet = 0.0
                        await response.write(b": keep-alive\n\n")
                    continue
                quiet = 0.0
                if event is CLOSED:
                    break
                if event is OVERFLOW:
                    notice = {
                        "Type": "overflow",
                        "Message": f"more than {sub.queue_size} events behind: re-sync by "
                        "polling the API, then subscribe again",
                    }
                    await response.write(
                        f"event: overflow\ndata: {json.dumps(notice)}\n\n".encode()
                    )
                    break
                else:
                    frame = f"id: {event['Seq']}\ndata: {json.dumps(event)}\n\n"
                    await response.write(frame.encode())
        except (ConnectionError, RuntimeError):
            pass  # the subscriber went away (RuntimeError: aiohttp's closed transport)
        finally:
            ended = True
            sub.close()
        return response

    # -- nodes ----------------------------------------------------------------
    async def list_nodes(self, request: web.Request) -> web.Response:
        q = request.query
        nodes = [n.state for n in self.orch.nodes.nodes.values()]
        approval = q.get("filter-approval", "").upper()
        if approval:
            if approval not in NodeMembership.__members__:
                raise BadRequest(
                    f"invalid filter-approval {approval!r}: use PENDING, APPROVED or REJECTED"
                )
            nodes = [n for n in nodes if n.Membership.value == approval]
        status = q.get("filter-status", "").upper()
        if status:
            if status not in NodeConnection.__members__:
                raise BadRequest(f"invalid filter-status {status!r}: use CONNECTED or DISCONNECTED")
            nodes = [n for n in nodes if n.ConnectionState.Status.value == status]
        _, wanted = _selector(q.getall("labels", []))
        nodes = [n for n in nodes if selectors.all_match(wanted, n.Info.Labels)]
        nodes.sort(key=_node_sort_key(q.get("order_by", "")), reverse=_bool(q, "reverse"))
        limit = parse_limit(q.get("limit"), default=max(len(nodes), 1))
        offset = decode_token(q.get("next_token"))
        page = nodes[offset : offset + limit]
        more = offset + limit < len(nodes)
        return _json(
            {
                "Nodes": [n.wire() for n in page],
                "NextToken": encode_token(offset + limit) if more else "",
            }
        )

    async def get_node(self, request: web.Request) -> web.Response:
        node = self.orch.nodes.get(request.match_info["id"])
        return _json({"Node": node.state.wire()})

    async def update_node(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise BadRequest(
                "request body must be a JSON object {NodeID, Action, Message, Deadline}"
            )
        lowered = {str(k).lower(): v for k, v in body.items()}
        node_id = request.match_info.get("id") or str(lowered.get("nodeid", ""))
        action = str(lowered.get("action", "")).lower()
        if not node_id:
            raise BadRequest("NodeID is required")
        if action not in NODE_ACTIONS:
            raise BadRequest(f"unknown node action {action!r}: use {', '.join(NODE_ACTIONS)}")
        deadline = None
        if lowered.get("deadline") not in (None, ""):
            if action != "drain":
                raise BadRequest("Deadline: only a drain has a deadline")
            try:
                deadline = parse_duration(lowered["deadline"])
            except ValueError as exc:
                raise BadRequest(f"Deadline: {exc}") from None
        message = str(lowered.get("message") or "")
        self.orch.nodes.get(node_id)  # 404 for an unknown node, whatever the action
        try:
            await self.orch.node_action(node_id, action, message, deadline)
        except (BadRequest, NotFound) as exc:
            if isinstance(exc, NotFound):
                raise
            return _json({"Success": False, "Error": str(exc)})
        return _json({"Success": True, "Error": ""})

    async def create_join_token(self, request: web.Request) -> web.Response:
        identities = self.orch.identities
        if identities is None:
            raise Conflict(
                "join tokens need the orchestrator's embedded NATS server; with an external "
                "NATS ([nats] servers), give each node a user of that server's own"
            )
        body = await read_json(request) if request.can_read_body else {}
        if not isinstance(body, dict):
            raise BadRequest('request body must be a JSON object {"TTL": "24h"} or empty')
        lowered = {str(k).lower(): v for k, v in body.items()}
        ttl = DEFAULT_TTL
        if lowered.get("ttl") not in (None, "", 0):
            try:
                ttl = parse_duration(lowered["ttl"])
            except ValueError as exc:
                raise BadRequest(f"TTL: {exc}") from None
        try:
            token, record = await identities.create_token(ttl)
        except ValueError as exc:
            raise BadRequest(f"TTL: {exc}") from None
        except TooManyTokens as exc:
            raise Conflict(str(exc)) from None
        warning = ""
        if self.config.nats.token is None:
            warning = (
                "NATS has no token, so any client may still connect with every permission: "
                "set [nats] token on the orchestrator for node identities to protect anything"
            )
        return _json(
            {
                "Token": token,
                "ID": record.id,
                "CreateTime": int(record.created * 1e9),
                "ExpiresAt": int(record.expires * 1e9),
                "Warning": warning,
            }
        )


NODE_ACTIONS = ("approve", "reject", "delete", "cordon", "uncordon", "drain")
"""Bacalhau's node actions, then bacedge's (cordon, uncordon, drain with a Deadline)."""


def _job_version(text: str) -> int:
    """`job_version`: 0 (or absent) means the latest, as in Bacalhau (a uint64 there)."""
    if not text:
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise BadRequest(f"invalid job_version {text[:32]!r}: use a version number (1, 2, ...)")
    return int(text)


_TRUE = ("1", "t", "true", "yes", "on")
_FALSE = ("", "0", "f", "false", "no", "off")


def _tail(text: str) -> int:
    """`tail`: a number of last lines (0 or absent: all), or Bacalhau's boolean, whose true
    starts at the end of the log (only lines printed from now on: `FROM_END`)."""
    word = text.strip().lower()
    if word in ("", "false", "0"):
        return 0
    if word == "true":
        return FROM_END
    if not word.isdigit() or len(word) > 9:
        raise BadRequest(f"invalid tail {text[:20]!r}: use a number of lines, or true")
    return int(word)


def _bool(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter: Go's strconv.ParseBool spellings (Bacalhau's), and
    yes/no/on/off; anything else is refused rather than read as false."""
    text = query.get(name, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequest(f"invalid {name} {text[:32]!r}: use true or false")


def _selector(texts: list[str]) -> tuple[str, list[Constraint]]:
    """The `labels` query parameters joined, as Bacalhau joins them (each a label selector:
    every requirement of every one must hold), and their requirements."""
    text = ",".join(t for t in texts if t.strip())
    try:
        return text, selectors.parse(text)
    except selectors.SelectorError as exc:
        raise BadRequest(f"invalid labels filter: {exc}") from None


def _job_states(states: list[str]) -> list[str]:
    by_lower = {s.value.lower(): s.value for s in JobStateType}
    out = []
    for state in states:
        if state.lower() not in by_lower:
            raise BadRequest(f"unknown job state {state!r}: use one of {', '.join(by_lower)}")
        out.append(by_lower[state.lower()])
    return out


def _node_sort_key(order_by: str) -> Callable[[NodeState], Any]:
    keys: dict[str, Callable[[NodeState], Any]] = {
        "": lambda n: n.Info.NodeID,
        "id": lambda n: n.Info.NodeID,
        "type": lambda n: n.Info.NodeType,
        "approval": lambda n: n.Membership.value,
        "status": lambda n: n.ConnectionState.Status.value,
        "available_cpu": lambda n: n.Info.ComputeNodeInfo.AvailableCapacity.CPU,
        "available_memory": lambda n: n.Info.ComputeNodeInfo.AvailableCapacity.Memory,
        "available_disk": lambda n: n.Info.ComputeNodeInfo.AvailableCapacity.Disk,
        "available_gpu": lambda n: n.Info.ComputeNodeInfo.AvailableCapacity.GPU,
    }
    key = keys.get(order_by.lower())
    if key is None:
        raise BadRequest(
            f"cannot order nodes by {order_by!r}: use one of {', '.join(k for k in keys if k)}"
        )
    return key


__all__ = ["PREFIX", "Api", "Execution", "ValidationError", "WSMsgType", "error_body"]
