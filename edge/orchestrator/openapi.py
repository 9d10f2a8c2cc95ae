"""The OpenAPI document the server serves, built from the same wire models."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from edge import __version__
from edge.auth import ACTIONS
from edge.models import BuildVersionInfo, Execution, Job, JobHistory, NodeState, SpecConfig

from .routes import ROUTES, SIGNED_IN, Route

_ERROR = {"$ref": "#/components/schemas/Error"}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        "400": {"description": "bad request", "content": {"application/json": {"schema": _ERROR}}},
        "404": {"description": "not found", "content": {"application/json": {"schema": _ERROR}}},
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _items(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "Items": {"type": "array", "items": _ref(name)},
            "NextToken": {"type": "string"},
        },
    }


def _q(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": kind}}


_PAGE = [_q("limit", "integer"), _q("next_token"), _q("order_by"), _q("reverse", "boolean")]
_NODE_ACTION = {
    "type": "object",
    "properties": {
        "NodeID": {"type": "string"},
        "Action": {
            "type": "string",
            "enum": ["approve", "reject", "delete", "cordon", "uncordon", "drain"],
        },
        "Message": {"type": "string"},
        "Deadline": {
            "type": "string",
            "description": "bacedge, drain only: when batch work on the node is moved "
            "(Go duration, e.g. 10m)",
        },
    },
}
_OBJECT: dict[str, Any] = {"type": "object"}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


# What each handler takes and answers; summaries, paths and methods are in routes.ROUTES.
_OPERATIONS: dict[str, dict[str, Any]] = {
    "alive": {"responses": _ok(_OBJECT)},
    "version": {"responses": _ok(_ref("BuildVersionInfo"))},
    "agent_node": {"responses": _ok(_OBJECT)},
    "agent_config": {
        "responses": _ok(
            {
                "type": "object",
                "properties": {"config": _OBJECT, "bacedge": _OBJECT},
            }
        )
    },
    "capabilities": {
        "responses": _ok(
            {
                "type": "object",
                "properties": {
                    "Alias": {"type": "string"},
                    "Actions": {
                        "type": "array",
                        "items": {"type": "string", "enum": list(ACTIONS)},
                    },
                    "AuthRequired": {"type": "boolean"},
                },
            }
        )
    },
    "openapi": {"responses": _ok(_OBJECT)},
    "metrics": {
        "responses": {
            "200": {
                "description": "Prometheus text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    },
    "put_job": {
        "requestBody": _body(
            {"type": "object", "properties": {"Job": _ref("Job"), "Force": {"type": "boolean"}}}
        ),
        "responses": _ok(
            {
                "type": "object",
                "properties": {
                    "JobID": {"type": "string"},
                    "EvaluationID": {"type": "string"},
                    "Warnings": {"type": "array", "items": {"type": "string"}},
                },
            }
        ),
    },
    "list_jobs": {
        "parameters": [_q("namespace"), _q("labels"), _q("state"), *_PAGE],
        "responses": _ok(_items("Job")),
    },
    "get_job": {
        "parameters": [_q("include"), _q("job_version")],
        "responses": _ok(
            {
                "type": "object",
                "properties": {
                    "Job": _ref("Job"),
                    "History": _items("JobHistory"),
                    "Executions": _items("Execution"),
                },
            }
        ),
    },
    "stop_job": {
        "parameters": [_q("reason")],
        "responses": _ok({"type": "object", "properties": {"EvaluationID": {"type": "string"}}}),
    },
    "rerun_job": {"responses": _ok(_OBJECT)},
    "job_history": {
        "parameters": [
            _q("since", "integer"),
            _q("event_type"),
            _q("execution_id"),
            _q("job_version"),
            *_PAGE,
        ],
        "responses": _ok(_items("JobHistory")),
    },
    "job_executions": {
        "parameters": [_q("job_version"), *_PAGE],
        "responses": _ok(_items("Execution")),
    },
    "job_versions": {"parameters": _PAGE, "responses": _ok(_items("Job"))},
    "job_results": {"parameters": _PAGE, "responses": _ok(_items("SpecConfig"))},
    "execution_result": {
        "responses": {
            "200": {
                "description": "the archive",
                "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
    "job_logs": {
        "parameters": [_q("execution_id"), _q("tail", "integer"), _q("follow", "boolean")],
        "responses": {"101": {"description": "switching protocols"}},
    },
    "events": {
        "parameters": [_q("types"), _q("job_id")],
        "responses": {
            "200": {
                "description": "an endless text/event-stream: `id: <Seq>` and `data: <JSON "
                "event>` per event, a comment line every 15 s; docs/api.md",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "503": {
                "description": "too many subscribers: poll instead",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    },
    "list_nodes": {
        "parameters": [_q("labels"), _q("filter-approval"), _q("filter-status"), *_PAGE],
        "responses": _ok(
            {
                "type": "object",
                "properties": {
                    "Nodes": {"type": "array", "items": _ref("NodeState")},
                    "NextToken": {"type": "string"},
                },
            }
        ),
    },
    "get_node": {
        "responses": _ok({"type": "object", "properties": {"Node": _ref("NodeState")}}),
    },
    "create_join_token": {
        "requestBody": {
            "required": False,
            **_body(
                {
                    "type": "object",
                    "properties": {
                        "TTL": {
                            "oneOf": [{"type": "string"}, {"type": "number"}],
                            "description": "e.g. 30m or 168h (default 24h, at most 30 days)",
                        }
                    },
                }
            ),
        },
        "responses": _ok(
            {
                "type": "object",
                "properties": {
                    "Token": {"type": "string", "description": "bxj1.ID.SECRET, shown once"},
                    "ID": {"type": "string"},
                    "CreateTime": {"type": "integer", "description": "Unix nanoseconds"},
                    "ExpiresAt": {"type": "integer", "description": "Unix nanoseconds"},
                    "Warning": {"type": "string"},
                },
            }
        ),
    },
    "update_node": {
        "requestBody": _body(_NODE_ACTION),
        "responses": _ok(
            {
                "type": "object",
                "properties": {"Success": {"type": "boolean"}, "Error": {"type": "string"}},
            }
        ),
    },
}

_PATH_DESCRIPTIONS = {
    "id": "job ID, unique ID prefix or name (a node's ID under /nodes)",
    "execution": "execution ID or unique prefix",
}
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}]


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": _PATH_DESCRIPTIONS.get(name, ""),
        }
        for name in re.findall(r"{(\w+)}", path)
    ]


def _operation(route: Route, auth: bool) -> dict[str, Any]:
    details = _OPERATIONS[route.handler]
    operation: dict[str, Any] = {"summary": route.summary}
    parameters = [*_path_parameters(route.path), *details.get("parameters", [])]
    if parameters:
        operation["parameters"] = parameters
    if "requestBody" in details:
        operation["requestBody"] = details["requestBody"]
    responses = dict(details["responses"])
    operation["x-bacedge-capability"] = route.capability
    if not route.public:
        needs = (
            "any valid credentials"
            if route.capability == SIGNED_IN
            else f"the `{route.capability}` capability"
        )
        operation["description"] = f"When the API has users or a token: needs {needs}."
    if auth:
        operation["security"] = [] if route.public else _SECURITY
        if not route.public:
            responses["401"] = {
                "description": "no credentials, or wrong ones",
                "content": {"application/json": {"schema": _ERROR}},
            }
            if route.capability != SIGNED_IN:
                responses["403"] = {
                    "description": f"the credentials lack {route.capability}",
                    "content": {"application/json": {"schema": _ERROR}},
                }
    operation["responses"] = responses
    return operation


@lru_cache(maxsize=2)
def openapi_document(auth: bool = False) -> dict[str, Any]:
    """The document for every route of routes.ROUTES; `auth`: whether this API asks for
    credentials (then each operation carries its security requirement)."""
    _, defs = models_json_schema(
        [
            (m, "serialization")
            for m in (Job, Execution, NodeState, JobHistory, SpecConfig, BuildVersionInfo)
        ],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "Status": {"type": "integer"},
            "Message": {"type": "string"},
            "Code": {"type": "string"},
            "Component": {"type": "string"},
        },
    }
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, auth)
    components: dict[str, Any] = {"schemas": schemas}
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"},
        "basic": {"type": "http", "scheme": "basic", "description": "username and password"},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "bacedge (Bacalhau-compatible) API", "version": __version__},
        "paths": paths,
        "components": components,
    }
