"""The OpenAPI document the server serves, built from the same wire models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from edge import __version__
from edge.models import BuildVersionInfo, Execution, Job, JobHistory, NodeState, SpecConfig

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


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "job ID, unique ID prefix or name",
}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
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
    prefix = "/api/v1/orchestrator"
    page = [_q("limit", "integer"), _q("next_token"), _q("order_by"), _q("reverse", "boolean")]
    paths: dict[str, Any] = {
        "/api/v1/agent/alive": {
            "get": {"summary": "liveness", "responses": _ok({"type": "object"})}
        },
        "/api/v1/agent/version": {
            "get": {"summary": "version", "responses": _ok(_ref("BuildVersionInfo"))}
        },
        "/api/v1/agent/node": {
            "get": {"summary": "this node's info", "responses": _ok({"type": "object"})}
        },
        "/api/v1/agent/config": {
            "get": {
                "summary": "effective config, secrets masked: `config` with Bacalhau's key "
                "names, `bacedge` as `bacedge config show` prints it",
                "responses": _ok(
                    {
                        "type": "object",
                        "properties": {
                            "config": {"type": "object"},
                            "bacedge": {"type": "object"},
                        },
                    }
                ),
            }
        },
        f"{prefix}/jobs": {
            "put": {
                "summary": "submit a job",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"Job": _ref("Job"), "Force": {"type": "boolean"}},
                            }
                        }
                    }
                },
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
            "get": {
                "summary": "list jobs",
                "parameters": [_q("namespace"), _q("labels"), _q("state"), *page],
                "responses": _ok(_items("Job")),
            },
        },
        f"{prefix}/jobs/{{id}}": {
            "get": {
                "summary": "get a job",
                "parameters": [_ID, _q("include")],
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
            "delete": {
                "summary": "stop a job",
                "parameters": [_ID, _q("reason")],
                "responses": _ok(
                    {"type": "object", "properties": {"EvaluationID": {"type": "string"}}}
                ),
            },
        },
        f"{prefix}/jobs/{{id}}/rerun": {
            "put": {
                "summary": "rerun a finished job",
                "parameters": [_ID],
                "responses": _ok({"type": "object"}),
            }
        },
        f"{prefix}/jobs/{{id}}/history": {
            "get": {
                "summary": "job history",
                "parameters": [
                    _ID,
                    _q("since", "integer"),
                    _q("event_type"),
                    _q("execution_id"),
                    *page,
                ],
                "responses": _ok(_items("JobHistory")),
            }
        },
        f"{prefix}/jobs/{{id}}/executions": {
            "get": {
                "summary": "executions",
                "parameters": [_ID, *page],
                "responses": _ok(_items("Execution")),
            }
        },
        f"{prefix}/jobs/{{id}}/versions": {
            "get": {
                "summary": "job versions",
                "parameters": [_ID, *page],
                "responses": _ok(_items("Job")),
            }
        },
        f"{prefix}/jobs/{{id}}/results": {
            "get": {
                "summary": "published results",
                "parameters": [_ID, *page],
                "responses": _ok(_items("SpecConfig")),
            }
        },
        f"{prefix}/jobs/{{id}}/executions/{{execution}}/result": {
            "get": {
                "summary": "one execution's published result as .tar.gz, relayed from its node "
                "or store (bacedge)",
                "parameters": [
                    _ID,
                    {
                        "name": "execution",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the archive",
                        "content": {
                            "application/gzip": {"schema": {"type": "string", "format": "binary"}}
                        },
                    }
                },
            }
        },
        f"{prefix}/jobs/{{id}}/logs": {
            "get": {
                "summary": "WebSocket of log frames {value: {Type: 1|2, Line}}",
                "parameters": [
                    _ID,
                    _q("execution_id"),
                    _q("tail", "integer"),
                    _q("follow", "boolean"),
                ],
                "responses": {"101": {"description": "switching protocols"}},
            }
        },
        f"{prefix}/nodes": {
            "get": {
                "summary": "list nodes",
                "parameters": [_q("labels"), _q("filter-approval"), _q("filter-status"), *page],
                "responses": _ok(
                    {
                        "type": "object",
                        "properties": {
                            "Nodes": {"type": "array", "items": _ref("NodeState")},
                            "NextToken": {"type": "string"},
                        },
                    }
                ),
            }
        },
        f"{prefix}/nodes/{{id}}": {
            "get": {
                "summary": "get a node",
                "parameters": [_ID],
                "responses": _ok({"type": "object", "properties": {"Node": _ref("NodeState")}}),
            },
            "put": {
                "summary": "approve, reject or delete a node; bacedge: cordon, uncordon, drain",
                "parameters": [_ID],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "NodeID": {"type": "string"},
                                    "Action": {
                                        "type": "string",
                                        "enum": [
                                            "approve",
                                            "reject",
                                            "delete",
                                            "cordon",
                                            "uncordon",
                                            "drain",
                                        ],
                                    },
                                    "Message": {"type": "string"},
                                    "Deadline": {
                                        "type": "string",
                                        "description": "bacedge, drain only: when batch work "
                                        "on the node is moved (Go duration, e.g. 10m)",
                                    },
                                },
                            }
                        }
                    }
                },
                "responses": _ok(
                    {
                        "type": "object",
                        "properties": {"Success": {"type": "boolean"}, "Error": {"type": "string"}},
                    }
                ),
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "bacedge (Bacalhau-compatible) API", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }
