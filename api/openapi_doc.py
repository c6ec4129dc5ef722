"""docs/API_SPEC.md, generated from the OpenAPI document so it cannot go stale:

    python -m api.openapi_doc > docs/API_SPEC.md

tests/api/test_openapi.py fails when the file differs from what this prints.
"""

from __future__ import annotations

import json
import sys
from typing import Any

HEADER = """# API specification

<!-- Generated from the OpenAPI document by `python -m api.openapi_doc > docs/API_SPEC.md`.
Do not edit by hand: tests/api/test_openapi.py fails when this file is stale. -->

The read-only HTTP API (`ascendnet api serve`). The live document is served at `/openapi.json`
(interactive at `/docs`).
"""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: dict[str, Any]) -> str:
    """A short human description of a JSON schema."""
    if "$ref" in schema:
        return f"[{_ref_name(schema['$ref'])}](#{_ref_name(schema['$ref']).lower()})"
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        text = " or ".join(type_of(s) for s in options)
        return f"{text} or null" if nullable else text
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and "properties" not in schema:
        return "object"
    parts = [str(kind)]
    if "format" in schema:
        parts.append(f"({schema['format']})")
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "maximum" in schema:
        bounds.append(f"<= {schema['maximum']}")
    if "minLength" in schema:
        bounds.append(f"length >= {schema['minLength']}")
    if "maxLength" in schema:
        bounds.append(f"length <= {schema['maxLength']}")
    if "pattern" in schema:
        bounds.append(f"pattern `{schema['pattern']}`")
    if bounds:
        parts.append(", ".join(bounds))
    return " ".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    out = [f"### {method.upper()} {path}", "", f"**{op.get('summary', '')}**", ""]
    if op.get("description"):
        out += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | type | default | description |", "|---|---|---|---|---|"]
        for p in params:
            schema = p.get("schema", {})
            default = schema.get("default")
            out.append(
                f"| `{p['name']}` | {p['in']} | {_cell(type_of(schema))} | "
                f"{'' if default is None else f'`{default}`'} | {_cell(p.get('description', ''))} |"
            )
        out.append("")
    out += ["| status | meaning | body |", "|---|---|---|"]
    for code, response in sorted(op.get("responses", {}).items()):
        content = response.get("content", {})
        bodies = []
        for media, spec in content.items():
            if "schema" in spec:
                bodies.append(f"{type_of(spec['schema'])} ({media})")
            else:
                bodies.append(media)
        out.append(f"| {code} | {_cell(response.get('description', ''))} | {_cell(', '.join(bodies))} |")
    out.append("")
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f"### {name}", ""]
    if schema.get("description"):
        out += [schema["description"].strip(), ""]
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        out += ["| field | type | description |", "|---|---|---|"]
        for field, spec in properties.items():
            marker = "" if field in required else " (optional)"
            out.append(
                f"| `{field}`{marker} | {_cell(type_of(spec))} | {_cell(spec.get('description', ''))} |"
            )
        out.append("")
    elif "enum" in schema:
        out += [type_of(schema), ""]
    for example in schema.get("examples", [])[:1]:
        out += ["Example:", "", "```json", json.dumps(example, indent=2), "```", ""]
    return out


def render(doc: dict[str, Any]) -> str:
    """The Markdown specification of an OpenAPI document."""
    info = doc["info"]
    out = [
        HEADER,
        f"Version {info['version']}, OpenAPI {doc['openapi']}.",
        "",
        info.get("description", "").strip(),
        "",
    ]
    out += ["## Endpoints", "", "| method | path | summary |", "|---|---|---|"]
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    for path, method, op in operations:
        anchor = (
            f"{method}-{path}".lower().replace("/", "").replace("{", "").replace("}", "").replace("_", "")
        )
        out.append(f"| {method.upper()} | [`{path}`](#{anchor}) | {_cell(op.get('summary', ''))} |")
    out.append("")
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, method, op in operations:
        by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((path, method, op))
    tags = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
    for tag, ops in by_tag.items():
        out += [f"## {tag.capitalize()}", ""]
        if tags.get(tag):
            out += [tags[tag], ""]
        for path, method, op in ops:
            out += _operation(path, method, op)
    out += ["## Schemas", ""]
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        out += _schema(name, schema)
    return "\n".join(out).rstrip() + "\n"


def document() -> dict[str, Any]:
    """The OpenAPI document of the app (no database is opened to build it)."""
    from api.main import create_app
    from api.settings import ApiSettings

    settings = ApiSettings(_env_file=None, env="local", database_url="sqlite:///openapi-only.sqlite3")
    return create_app(settings).openapi()


def main() -> None:
    sys.stdout.write(render(document()))


if __name__ == "__main__":
    main()
