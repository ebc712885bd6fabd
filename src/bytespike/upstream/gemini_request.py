"""OpenAI Chat Completions request → Gemini `GenerateContentRequest`
(https://ai.google.dev/api/generate-content), for GeminiProvider.

Pure functions. Failure policy: input Gemini cannot express (several choices, a content
part of an unknown type, tool arguments that are not a JSON object) raises InvalidRequest
before any upstream call. JSON-schema keywords Gemini's `Schema` lacks are dropped from
tool parameters (Gemini rejects the whole request otherwise), after local `$ref`s are
inlined; OpenAI-only tuning knobs with no Gemini meaning are ignored.
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from bytespike.errors import InvalidRequest
from bytespike.upstream.base import JSONObject, arguments_object

# Gemini's Schema is a subset of OpenAPI 3.0; anything else fails the request.
SCHEMA_KEYS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "default", "example",
        "items", "minItems", "maxItems", "properties", "required", "minProperties",
        "maxProperties", "propertyOrdering", "minLength", "maxLength", "pattern",
        "minimum", "maximum", "anyOf",
    }
)  # fmt: skip
TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
SYSTEM_ROLES = ("system", "developer")
# OpenAI's reasoning_effort as Gemini's thinking settings: Gemini 3 takes a level (its Pro
# models know only "low" and "high"), earlier models a budget of thinking tokens (24,576
# is the most every 2.5 model accepts).
THINKING_LEVELS = {
    "none": "low", "minimal": "low", "low": "low",
    "medium": "high", "high": "high", "xhigh": "high", "max": "high",
}  # fmt: skip
THINKING_BUDGETS = {
    "none": 0, "minimal": 512, "low": 1024,
    "medium": 8192, "high": 24_576, "xhigh": 24_576, "max": 24_576,
}  # fmt: skip
# Gemini 3 must get each function call's thought signature back with the call, and an
# OpenAI client hands back only the call's id: so the signature rides in the id.
SIGNATURE_MARK = "__thought__"


def generate_content_request(body: JSONObject) -> JSONObject:
    """The Gemini request for an OpenAI chat request (`max_completion_tokens` set)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required")
    system = [m for m in messages if m.get("role") in SYSTEM_ROLES]
    out: JSONObject = {
        "contents": contents([m for m in messages if m.get("role") not in SYSTEM_ROLES])
    }
    if system:
        out["systemInstruction"] = {"parts": [p for m in system for p in _parts(m)]}
    if body.get("tools"):
        out["tools"] = [{"functionDeclarations": [_declaration(t) for t in body["tools"]]}]
        if body.get("tool_choice") is not None:
            out["toolConfig"] = {"functionCallingConfig": _calling_config(body["tool_choice"])}
    config = generation_config(body)
    if config:
        out["generationConfig"] = config
    return out


def contents(messages: list[JSONObject]) -> list[JSONObject]:
    """Gemini `contents`: user/tool turns as role "user", assistant turns as "model";
    consecutive turns of one role merge (tool results answer one model turn together)."""
    names = {
        call.get("id"): call.get("function", {}).get("name")
        for m in messages
        for call in m.get("tool_calls") or ()
    }
    out: list[JSONObject] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            turn = {"role": "model", "parts": _model_parts(message)}
        elif role == "tool":
            turn = {"role": "user", "parts": [_function_response(message, names)]}
        elif role == "user":
            turn = {"role": "user", "parts": _parts(message)}
        else:
            raise InvalidRequest(f"messages: role {role!r} is not supported")
        if out and out[-1]["role"] == turn["role"]:
            out[-1]["parts"].extend(turn["parts"])
        elif turn["parts"]:
            out.append(turn)
    return out


def generation_config(body: JSONObject) -> JSONObject:
    if (body.get("n") or 1) != 1:
        raise InvalidRequest("n: Gemini models return one choice here; n must be 1")
    config: JSONObject = {}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    pairs = [
        ("maxOutputTokens", limit),
        ("temperature", body.get("temperature")),
        ("topP", body.get("top_p")),
        ("presencePenalty", body.get("presence_penalty")),
        ("frequencyPenalty", body.get("frequency_penalty")),
        ("seed", body.get("seed")),
    ]
    config.update((key, value) for key, value in pairs if value is not None)
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort is not None:
        config["thinkingConfig"] = _thinking(str(body.get("model", "")), effort)
    return config


def _thinking(model: str, effort: Any) -> JSONObject:
    if effort not in THINKING_BUDGETS:
        raise InvalidRequest(f"reasoning_effort: {effort!r} is not one of {list(THINKING_BUDGETS)}")
    if model.removeprefix("models/").startswith(("gemini-1", "gemini-2")):
        return {"thinkingBudget": THINKING_BUDGETS[effort]}
    return {"thinkingLevel": THINKING_LEVELS[effort]}


def clean_schema(
    schema: Any, defs: JSONObject | None = None, expanding: frozenset[str] = frozenset()
) -> Any:
    """`schema` with only keywords Gemini's Schema knows; `"type": [T, "null"]` becomes
    `"type": T, "nullable": true` (its way of saying the same). Gemini has no `$ref`: a
    reference to the schema's own `$defs` (or `definitions`) is replaced by what it names,
    and a recursive one, which cannot be written out, by a plain object."""
    if not isinstance(schema, dict):
        return schema
    if defs is None:
        defs = {**_mapping(schema.get("definitions")), **_mapping(schema.get("$defs"))}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix("#/$defs/").removeprefix("#/definitions/")
        rest = clean_schema({k: v for k, v in schema.items() if k != "$ref"}, defs, expanding)
        target = None if name in expanding else defs.get(name)
        if isinstance(target, dict):  # anything else names nothing that can be written out
            return {**clean_schema(target, defs, expanding | {name}), **rest}
        return {"type": "object", **rest}
    out: JSONObject = {}
    for key, value in schema.items():
        if key not in SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub, defs, expanding) for name, sub in value.items()}
        elif key == "items":
            out[key] = clean_schema(value, defs, expanding)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [clean_schema(sub, defs, expanding) for sub in value]
        elif key == "type" and isinstance(value, list):
            kinds = [kind for kind in value if kind != "null"]
            if len(kinds) == 1:
                out[key] = kinds[0]
            else:  # Gemini has no type unions, only anyOf
                out["anyOf"] = [{"type": kind} for kind in kinds]
            if len(kinds) < len(value):
                out["nullable"] = True
        else:
            out[key] = value
    return out


def _mapping(value: Any) -> JSONObject:
    return value if isinstance(value, dict) else {}


def _parts(message: JSONObject) -> list[JSONObject]:
    content = message.get("content")
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    return [_part(part) for part in content]


def _part(part: JSONObject) -> JSONObject:
    kind = part.get("type")
    if kind == "text":
        return {"text": part.get("text", "")}
    if kind == "image_url":
        url = part.get("image_url", {}).get("url", "")
        return _media(url, "image/jpeg")
    if kind == "input_audio":
        audio = part.get("input_audio", {})
        mime = f"audio/{audio.get('format', 'wav')}"
        return {"inlineData": {"mimeType": mime, "data": audio.get("data", "")}}
    if kind == "file" and part.get("file", {}).get("file_data"):
        return _media(part["file"]["file_data"], "application/pdf")
    raise InvalidRequest(f"messages: content parts of type {kind!r} are not supported")


def _media(url: str, fallback_type: str) -> JSONObject:
    """A data: URL travels inline; any other URL is handed to Gemini to fetch."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        mime = header.split(";")[0] or fallback_type
        return {"inlineData": {"mimeType": mime, "data": data}}
    mime = mimetypes.guess_type(url.split("?")[0])[0] or fallback_type
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _model_parts(message: JSONObject) -> list[JSONObject]:
    parts = [p for p in _parts(message) if p.get("text") != ""]
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        args = arguments_object(function.get("arguments"))
        if args is None:
            raise InvalidRequest("messages: tool call arguments must be a JSON object")
        part: JSONObject = {"functionCall": {"name": function.get("name"), "args": args}}
        signature = str(call.get("id") or "").partition(SIGNATURE_MARK)[2]
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(message: JSONObject, names: dict[Any, Any]) -> JSONObject:
    name = names.get(message.get("tool_call_id"))
    if not name:
        raise InvalidRequest("messages: a tool message answers no earlier tool call")
    text = "".join(p.get("text", "") for p in _parts(message))
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"result": text}
    return {"functionResponse": {"name": name, "response": response}}


def _declaration(tool: JSONObject) -> JSONObject:
    if tool.get("type") != "function":
        raise InvalidRequest(f"tools: tools of type {tool.get('type')!r} are not supported")
    function = tool.get("function", {})
    out: JSONObject = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    parameters = clean_schema(function.get("parameters"))
    # Gemini rejects an OBJECT schema without properties: a no-argument function has none.
    if isinstance(parameters, dict) and parameters.get("properties"):
        out["parameters"] = parameters
    return out


def _calling_config(choice: Any) -> JSONObject:
    if isinstance(choice, str) and choice in TOOL_MODES:
        return {"mode": TOOL_MODES[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"mode": "ANY", "allowedFunctionNames": [choice.get("function", {}).get("name")]}
    raise InvalidRequest(f"tool_choice: {choice!r} is not supported")


def _response_format(fmt: Any) -> JSONObject:
    if not isinstance(fmt, dict) or fmt.get("type") == "text":
        return {}
    if fmt.get("type") == "json_object":
        return {"responseMimeType": "application/json"}
    if fmt.get("type") == "json_schema":
        schema = clean_schema(fmt.get("json_schema", {}).get("schema"))
        return {"responseMimeType": "application/json", "responseSchema": schema}
    raise InvalidRequest(f"response_format: {fmt.get('type')!r} is not supported")
