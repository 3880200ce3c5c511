"""The response schemas the seeds give, as JSON Schema."""

from __future__ import annotations

from typing import Any

# Seed 001 (ADP-52), its OpenAPI 3.1 schema for application/health+json, verbatim.
_UPPER = {"type": "string", "enum": ["PASS", "FAIL", "WARN"]}
SEED_001: dict[str, Any] = {
    "type": "object",
    "required": ["status", "version", "releaseId"],
    "properties": {
        "status": _UPPER,
        "version": {"type": "string"},
        "releaseId": {"type": "string"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "output": {"type": "string"},
        "checks": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["componentType", "status", "time"],
                    "properties": {
                        "componentType": {"type": "string"},
                        "status": _UPPER,
                        "time": {"type": "string", "format": "date-time"},
                        "observedValue": {"type": "number"},
                        "observedUnit": {"type": "string"},
                    },
                },
            },
        },
    },
}

# Seed 004 (draft-inadarei-api-health-check-06), its field rules: lower-case statuses,
# "component:measurement" keys, output absent on pass, affectedEndpoints only off pass.
_LOWER = {"type": "string", "enum": ["pass", "warn", "fail"]}
_NOT_PASS_IF_OUTPUT = {
    "if": {"required": ["output"]},
    "then": {"properties": {"status": {"enum": ["warn", "fail"]}}},
}
SEED_004: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "allOf": [_NOT_PASS_IF_OUTPUT],
    "properties": {
        "status": _LOWER,
        "version": {"type": "string"},
        "releaseId": {"type": "string"},
        "serviceId": {"type": "string"},
        "description": {"type": "string"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "output": {"type": "string"},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
        "checks": {
            "type": "object",
            "propertyNames": {"pattern": "^[^:]+(:[^:]+)?$"},
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["status", "componentType", "time"],
                    "allOf": [
                        _NOT_PASS_IF_OUTPUT,
                        {
                            "if": {"required": ["affectedEndpoints"]},
                            "then": {"properties": {"status": {"enum": ["warn", "fail"]}}},
                        },
                    ],
                    "properties": {
                        "componentId": {"type": "string"},
                        "componentType": {"type": "string"},
                        "observedUnit": {"type": "string"},
                        "status": _LOWER,
                        "affectedEndpoints": {"type": "array", "items": {"type": "string"}},
                        "time": {"type": "string", "format": "date-time"},
                        "output": {"type": "string"},
                        "links": {"type": "object"},
                    },
                },
            },
        },
    },
}

# Seed 002: the MicroProfile Health 1.0 schema, verbatim (JSON Schema draft 04).
SEED_002: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {
        "outcome": {"type": "string"},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "state": {"type": "string"},
                    "data": {
                        "type": "object",
                        "properties": {
                            "key": {"type": "string"},
                            "value": {"type": "string|boolean|int"},
                        },
                    },
                },
                "required": ["name", "state"],
            },
        },
    },
    "required": ["outcome", "checks"],
}
_UP_DOWN = {"type": "string", "enum": ["UP", "DOWN"]}
_DATA = {"type": "object", "additionalProperties": {"type": ["string", "boolean", "number"]}}
SEED_002_STRICT: dict[str, Any] = {  # seed 002 with UP/DOWN and typed data values
    "type": "object",
    "required": ["outcome", "checks"],
    "properties": {
        "outcome": _UP_DOWN,
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "state"],
                "properties": {"name": {"type": "string"}, "state": _UP_DOWN, "data": _DATA},
            },
        },
    },
}
# MicroProfile Health 4.0: {"status", "checks": [{"name", "status", "data"}]}.
MICROPROFILE_4: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "additionalProperties": False,
    "properties": {
        "status": _UP_DOWN,
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "status"],
                "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "status": _UP_DOWN, "data": _DATA},
            },
        },
    },
}
_SPRING_STATUS = {"type": "string", "enum": ["UP", "DOWN", "OUT_OF_SERVICE", "UNKNOWN"]}
SPRING: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": _SPRING_STATUS,
        "components": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": _SPRING_STATUS, "details": {"type": "object"}},
            },
        },
    },
}
# Seed 000: the envelope, its three documented shapes.
_TIMESTAMP = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"}


def _envelope_shape(code: int, status: str, **fields: Any) -> dict[str, Any]:
    """One documented shape of seed 000: its code, its data.status, its other fields."""
    return {
        "properties": {
            "code": {"const": code},
            "data": {
                "type": "object",
                "required": ["status", "timestamp", *(k for k in fields if k != "service")],
                "additionalProperties": False,
                "properties": {"status": {"const": status}, "timestamp": _TIMESTAMP, **fields},
            },
        }
    }


ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "data"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "number"},
        "message": {"type": "string"},
        "data": {"type": "object"},
    },
    "oneOf": [
        _envelope_shape(
            0, "healthy", service={"type": "string"}, uptime={"type": "integer", "minimum": 0}
        ),
        _envelope_shape(50001, "unhealthy"),
        _envelope_shape(50002, "degraded", details={"type": "string"}),
    ],
}
