"""OpenAI Responses request → OpenAI Chat Completions request, for every provider that does
not speak Responses itself (Anthropic, Gemini, chat-only OpenAI-compatible servers, mock):
the chat shape is the one every provider takes (upstream/base.py), and its translations to
Anthropic and Gemini do the rest.

Pure functions, on a body already checked against proxy/responses_schema.py. Failure
policy: what Chat Completions cannot express (an item or tool only an OpenAI model knows, a
file id) raises InvalidRequest naming the field, before any hold. Hosted tools (HOSTED) are
left out, as for an OpenAI model (proxy/responses.py). Reasoning items are left out: they
are an OpenAI model's own, and no other model can read them. A namespace's functions become
chat functions named `namespace__name`; `ToolNames` maps them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bytespike.errors import InvalidRequest
from bytespike.upstream.base import JSONObject

# Tools OpenAI runs on its side, billed apart from tokens (search calls, containers) and
# feeding the model input no hold could bound: the gateway never sends them on.
HOSTED = frozenset(
    {
        "web_search", "web_search_preview", "web_search_preview_2025_03_11",
        "web_search_2025_08_26", "file_search", "code_interpreter", "image_generation",
        "mcp", "tool_search",
    }
)  # fmt: skip
SEPARATOR = "__"  # between a namespace and a function name, in chat function names
_DETAILS = ("auto", "low", "high")  # what chat's image_url.detail knows


@dataclass
class ToolNames:
    """Chat function names of namespaced tools → (namespace, name)."""

    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)

    def chat_name(self, namespace: str | None, name: str) -> str:
        if not namespace:
            return name
        joined = f"{namespace}{SEPARATOR}{name}"
        self.namespaced[joined] = (namespace, name)
        return joined

    def split(self, chat_name: str) -> tuple[str | None, str]:
        """(namespace, name) of a function the model called."""
        return self.namespaced.get(chat_name, (None, chat_name))


def to_chat(body: JSONObject) -> tuple[JSONObject, ToolNames]:
    """The chat request for a Responses request (its `input` holding every item, replayed
    ones included), and the names of its namespaced functions."""
    names = ToolNames()
    out: JSONObject = {"model": body["model"], "messages": messages(body, names)}
    tools = _tools(body.get("tools") or [], names)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
        if body.get("parallel_tool_calls") is not None:
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    pairs = [
        ("max_completion_tokens", body.get("max_output_tokens")),
        ("temperature", body.get("temperature")),
        ("top_p", body.get("top_p")),
        ("user", body.get("user")),
        ("reasoning_effort", (body.get("reasoning") or {}).get("effort")),
        ("verbosity", (body.get("text") or {}).get("verbosity")),
        ("response_format", _response_format((body.get("text") or {}).get("format"))),
    ]
    out.update((key, value) for key, value in pairs if value is not None)
    if body.get("stream"):
        out["stream"] = True
    return out, names


def items_of(body: JSONObject) -> list[Any]:
    """The request's input as items (a text input is one user message)."""
    given = body.get("input")
    if isinstance(given, str):
        return [{"type": "message", "role": "user", "content": given}]
    return list(given or [])


def messages(body: JSONObject, names: ToolNames) -> list[JSONObject]:
    out: list[JSONObject] = []
    if body.get("instructions"):
        out.append({"role": "system", "content": body["instructions"]})
    for index, item in enumerate(items_of(body)):
        where = f"input[{index}]"
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            _call(out, item, names)
        elif kind == "function_call_output":
            out.append(_call_output(item, where))
        elif kind != "reasoning":
            raise InvalidRequest(
                f"{where}.type: items of type {kind!r} need an OpenAI model", param=f"{where}.type"
            )
    return out


def _message(item: JSONObject, where: str) -> JSONObject:
    role, content = item["role"], item["content"]
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = [_part(part, role, f"{where}.content[{i}]") for i, part in enumerate(content)]
    return {"role": role, "content": parts}


def _part(part: JSONObject, role: str, where: str) -> JSONObject:
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        if role == "assistant":
            return {"type": "refusal", "refusal": part["refusal"]}
        return {"type": "text", "text": part["refusal"]}
    if role != "user":
        raise InvalidRequest(
            f"{where}.type: a {role} message holds text only", param=f"{where}.type"
        )
    if kind == "input_image":
        return _image(part, where)
    return _file(part, where)


def _image(part: JSONObject, where: str) -> JSONObject:
    if not part.get("image_url"):
        raise InvalidRequest(
            f"{where}.image_url: an image URL is required (file ids need an OpenAI model)",
            param=f"{where}.image_url",
        )
    image: JSONObject = {"url": part["image_url"]}
    if part.get("detail") in _DETAILS:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file(part: JSONObject, where: str) -> JSONObject:
    if part.get("file_url") is not None or not part.get("file_data"):
        raise InvalidRequest(
            f"{where}.file_data: file contents are required (file ids and URLs need an "
            "OpenAI model)",
            param=f"{where}.file_data",
        )
    file = {"file_data": part["file_data"]}
    if part.get("filename") is not None:
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _call(out: list[JSONObject], item: JSONObject, names: ToolNames) -> None:
    """A function call joins the assistant turn before it (parallel calls are one turn)."""
    name = names.chat_name(item.get("namespace"), item["name"])
    function = {"name": name, "arguments": item["arguments"]}
    call = {"id": item["call_id"], "type": "function", "function": function}
    if out and out[-1]["role"] == "assistant":
        out[-1].setdefault("tool_calls", []).append(call)
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _call_output(item: JSONObject, where: str) -> JSONObject:
    output = item["output"]
    if not isinstance(output, str):
        if any(part["type"] != "input_text" for part in output):
            raise InvalidRequest(
                f"{where}.output: images and files in a tool's output need an OpenAI model",
                param=f"{where}.output",
            )
        output = "".join(part["text"] for part in output)
    return {"role": "tool", "tool_call_id": item["call_id"], "content": output}


def _tools(tools: list[JSONObject], names: ToolNames) -> list[JSONObject]:
    out: list[JSONObject] = []
    for index, tool in enumerate(tools):
        kind = tool["type"]
        if kind == "function":
            out.append(_function(tool, None, names))
        elif kind == "namespace":
            for inner in tool["tools"]:
                if inner["type"] != "function":
                    raise InvalidRequest(
                        f"tools[{index}].tools: custom tools need an OpenAI model",
                        param=f"tools[{index}].tools",
                    )
                out.append(_function(inner, tool["name"], names))
        elif kind not in HOSTED:
            raise InvalidRequest(
                f"tools[{index}].type: {kind} tools need an OpenAI model",
                param=f"tools[{index}].type",
            )
    return out


def _function(tool: JSONObject, namespace: str | None, names: ToolNames) -> JSONObject:
    function: JSONObject = {
        "name": names.chat_name(namespace, tool["name"]),
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    kind = choice["type"]
    if kind == "function":
        return {"type": "function", "function": {"name": choice["name"]}}
    if kind == "allowed_tools":
        allowed = [
            {"type": "function", "function": {"name": tool.get("name")}}
            for tool in choice["tools"]
            if tool.get("type") == "function"
        ]
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice["mode"], "tools": allowed},
        }
    raise InvalidRequest(
        f"tool_choice.type: {kind} tools need an OpenAI model", param="tool_choice.type"
    )


def _response_format(fmt: Any) -> JSONObject | None:
    if fmt is None or fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    schema: JSONObject = {"name": fmt["name"], "schema": fmt["schema"]}
    for key in ("description", "strict"):
        if fmt.get(key) is not None:
            schema[key] = fmt[key]
    return {"type": "json_schema", "json_schema": schema}
