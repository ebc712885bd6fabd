"""Checking a client's body against its API's request schema, before anything is spent.

Each client format declares its request as strict pydantic models (proxy/chat_schema.py,
proxy/messages_schema.py): a known field of the wrong type or out of range is refused
with a 400 naming it, so that no translation or provider ever meets a shape it does not
expect. Unknown fields pass (providers add them faster than we could list them); the
models only assert what the gateway itself reads. Strict mode: "1" is not an integer and
1 is not a boolean, as in the providers' own references.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bytespike.errors import InvalidRequest


class Schema(BaseModel):
    """Base of every request model: strict types, unknown fields allowed."""

    model_config = ConfigDict(strict=True, extra="allow")


# Pydantic names its model classes, which mean nothing to the client.
_INSTANCE_OF = re.compile(r" or instance of \w+")

Param = Callable[[list[str | int]], str]


def openai_param(path: list[str | int]) -> str:
    """OpenAI's way of naming a field: `messages[0].content[1].text`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def anthropic_param(path: list[str | int]) -> str:
    """Anthropic's way: `messages.0.content.1.text`."""
    return ".".join(str(part) for part in path)


def check(model: type[Schema], body: dict[str, Any], param: Param) -> None:
    """400 naming the first field of `body` that `model` refuses."""
    try:
        model.model_validate(body)
    except ValidationError as exc:
        path, message = _worst(exc, body)
        name = param(path)
        raise InvalidRequest(
            f"{name}: {message}" if name else message, param=name or None
        ) from None


def _worst(exc: ValidationError, body: dict[str, Any]) -> tuple[list[str | int], str]:
    """The deepest field at fault, and what is wrong with it. A union reports one error per
    branch; they all name the same field, so their messages are joined."""
    found: list[tuple[list[str | int], str]] = []
    for error in exc.errors():
        loc = error["loc"]
        if error["type"] == "missing":  # the last step names a field the body lacks
            found.append(([*_data_path(body, loc[:-1]), loc[-1]], "is required"))
        else:
            found.append((_data_path(body, loc), error["msg"]))
    deepest = max(len(path) for path, _ in found)
    at = next(path for path, _ in found if len(path) == deepest)
    messages = dict.fromkeys(msg for path, msg in found if path == at)
    text = " or ".join(messages).replace("Input should be", "should be")
    return at, _INSTANCE_OF.sub("", text)


def _data_path(body: Any, loc: tuple[int | str, ...]) -> list[str | int]:
    """The error's location as a path into the body. Pydantic's locations also name the
    union branch tried (`str`, `list[...]`, a tag); following the data skips those."""
    node, path = body, []
    for part in loc:
        if _has(node, part):
            node = node[part]
            path.append(part)
    return path


def _has(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
