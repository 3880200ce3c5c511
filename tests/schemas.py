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
