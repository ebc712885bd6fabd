"""Gemini `GenerateContentRequest` (from a Gemini client) → OpenAI Chat Completions request,
for models whose provider does not speak Gemini natively.

Pure functions over a body already checked (proxy/gemini_schema.py) and in camelCase.
Failure policy: what no OpenAI-shaped provider can take raises InvalidRequest naming the
field, before any upstream call: Gemini's own tools (Google Search, code execution...), its
prompt caches (`cachedContent`), files by URI other than images, inline data other than
images, WAV/MP3 audio and PDFs, several candidates, non-text output modalities. Knobs with
no OpenAI meaning (`topK`, `safetySettings`, `mediaResolution`, `speechConfig`) are ignored;
thought parts echoed back are dropped (they mean something only to the model that wrote
them). The output limit is left to the hold (`Prepared.limit`).
"""

from __future__ import annotations

from typing import Any

import orjson

from bytespike.errors import InvalidRequest
from bytespike.upstream.base import JSONObject

TOOL_MODES = {"AUTO": "auto", "VALIDATED": "auto", "MODE_UNSPECIFIED": "auto", "NONE": "none"}
AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}
# A thinking budget as OpenAI's reasoning effort (-1, "dynamic", says nothing).
BUDGET_EFFORTS = ((0, "none"), (1024, "low"), (8192, "medium"))
SCHEMA_KEYS = frozenset(
    {
        "type", "format", "title", "description", "enum", "default", "items", "minItems",
        "maxItems", "properties", "required", "minProperties", "maxProperties", "minLength",
        "maxLength", "pattern", "minimum", "maximum", "anyOf",
    }
)  # fmt: skip


def generate_request_to_openai(body: JSONObject) -> JSONObject:
    """The OpenAI chat request (without `model` and output limit) for a Gemini request."""
    if body.get("cachedContent"):
        raise InvalidRequest("cachedContent: only Gemini models read Gemini's caches")
    messages = _system(body.get("systemInstruction")) + _messages(body["contents"])
    out: JSONObject = {"messages": messages}
    tools = [t for i, tool in enumerate(body.get("tools") or ()) for t in _tools(tool, i)]
    if tools:
        out["tools"] = tools
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if calling:
        out["tool_choice"] = _tool_choice(calling)
    out.update(_generation(body.get("generationConfig") or {}))
    return out


def _system(instruction: JSONObject | None) -> list[JSONObject]:
    if not instruction:
        return []
    text = "\n".join(p["text"] for p in instruction["parts"] if p.get("text") is not None)
    return [{"role": "system", "content": text}]


def _messages(contents: list[JSONObject]) -> list[JSONObject]:
    out: list[JSONObject] = []
    calls: list[tuple[str, str]] = []  # (id, name) of calls not yet answered
    for i, content in enumerate(contents):
        parts = [p for p in content["parts"] if not p.get("thought")]
        if content.get("role") == "model":
            out.append(_assistant(parts, calls, i))
        else:
            out.extend(_user(parts, calls, i))
    return out


def _assistant(parts: list[JSONObject], calls: list[tuple[str, str]], i: int) -> JSONObject:
    texts = [p["text"] for p in parts if p.get("text") is not None]
    message: JSONObject = {"role": "assistant", "content": "".join(texts)}
    tool_calls = []
    for j, part in enumerate(parts):
        if part.get("functionCall"):
            call = part["functionCall"]
            call_id = call.get("id") or f"call_{i}_{j}"
            arguments = orjson.dumps(call.get("args") or {}).decode()
            function = {"name": call["name"], "arguments": arguments}
            tool_calls.append({"id": call_id, "type": "function", "function": function})
            calls.append((call_id, call["name"]))
        elif part.get("text") is None:
            raise _unsupported(part, f"contents[{i}].parts[{j}]")
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _user(parts: list[JSONObject], calls: list[tuple[str, str]], i: int) -> list[JSONObject]:
    """Function responses become tool messages (first: they answer the calls just made),
    everything else one user message."""
    tools, content = [], []
    for j, part in enumerate(parts):
        where = f"contents[{i}].parts[{j}]"
        if part.get("functionResponse"):
            tools.append(_tool_message(part["functionResponse"], calls, where))
        else:
            content.append(_content_part(part, where))
    if not content:
        return tools
    if all(c["type"] == "text" for c in content):
        return [*tools, {"role": "user", "content": "".join(c["text"] for c in content)}]
    return [*tools, {"role": "user", "content": content}]


def _tool_message(response: JSONObject, calls: list[tuple[str, str]], where: str) -> JSONObject:
    """A functionResponse answers the call with its id, else the oldest open call by name."""
    match = next((c for c in calls if response.get("id") and c[0] == response["id"]), None)
    match = match or next((c for c in calls if c[1] == response["name"]), None)
    if match is None:
        raise InvalidRequest(
            f"{where}.functionResponse: answers no earlier functionCall",
            param=f"{where}.functionResponse",
        )
    calls.remove(match)
    text = orjson.dumps(response["response"]).decode()
    return {"role": "tool", "tool_call_id": match[0], "content": text}


def _content_part(part: JSONObject, where: str) -> JSONObject:
    if part.get("text") is not None:
        return {"type": "text", "text": part["text"]}
    if part.get("inlineData"):
        return _inline(part["inlineData"], where)
    uri = (part.get("fileData") or {}).get("fileUri")
    mime = (part.get("fileData") or {}).get("mimeType") or ""
    if uri and (mime.startswith("image/") or not mime):
        if not uri.startswith(("http://", "https://")):
            # A gs:// or Files API name: only Gemini fetches those; said here, in the
            # client's terms, rather than by the other provider's translation.
            param = f"{where}.fileData.fileUri"
            message = f"{param}: only Gemini models read {uri!r}; others take an http(s) URL"
            raise InvalidRequest(message, param=param)
        return {"type": "image_url", "image_url": {"url": uri}}
    raise _unsupported(part, where)


def _inline(blob: JSONObject, where: str) -> JSONObject:
    mime, data = blob["mimeType"], blob["data"]
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
    if mime in AUDIO_FORMATS:
        return {"type": "input_audio", "input_audio": {"data": data, "format": AUDIO_FORMATS[mime]}}
    if mime == "application/pdf":
        url = f"data:{mime};base64,{data}"
        return {"type": "file", "file": {"file_data": url, "filename": "document.pdf"}}
    raise InvalidRequest(
        f"{where}.inlineData: only Gemini models read {mime!r} data",
        param=f"{where}.inlineData.mimeType",
    )


def _unsupported(part: JSONObject, where: str) -> InvalidRequest:
    kind = next((key for key, value in part.items() if value is not None), "empty")
    return InvalidRequest(f"{where}: only Gemini models take {kind} parts", param=where)


def _tools(tool: JSONObject, i: int) -> list[JSONObject]:
    others = [k for k, v in tool.items() if k != "functionDeclarations" and v is not None]
    if others:
        raise InvalidRequest(f"tools[{i}]: only Gemini models run {others[0]}", param=f"tools[{i}]")
    return [_function(d) for d in tool.get("functionDeclarations") or ()]


def _function(declaration: JSONObject) -> JSONObject:
    function: JSONObject = {"name": declaration["name"]}
    if declaration.get("description"):
        function["description"] = declaration["description"]
    parameters = declaration.get("parametersJsonSchema")
    if parameters is None and declaration.get("parameters"):
        parameters = json_schema(declaration["parameters"])
    function["parameters"] = parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def json_schema(schema: Any) -> Any:
    """A Gemini `Schema` (OpenAPI 3.0's subset, types in capitals, `nullable`) as JSON Schema."""
    if not isinstance(schema, dict):
        return schema
    out: JSONObject = {}
    for key, value in schema.items():
        if key not in SCHEMA_KEYS:
            continue
        if key == "type" and isinstance(value, str):
            if value != "TYPE_UNSPECIFIED":
                out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = json_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [json_schema(sub) for sub in value]
        else:
            out[key] = value
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _tool_choice(config: JSONObject) -> Any:
    mode = config.get("mode") or "AUTO"
    if mode != "ANY":
        return TOOL_MODES[mode]
    names = config.get("allowedFunctionNames") or []
    if len(names) == 1:
        return {"type": "function", "function": {"name": names[0]}}
    return "required"


def _generation(config: JSONObject) -> JSONObject:
    out: JSONObject = {}
    if (config.get("candidateCount") or 1) > 1:
        raise InvalidRequest(
            "generationConfig.candidateCount: one candidate per request",
            param="generationConfig.candidateCount",
        )
    if any(m.upper() != "TEXT" for m in config.get("responseModalities") or ()):
        raise InvalidRequest(
            "generationConfig.responseModalities: only Gemini models answer in other than text",
            param="generationConfig.responseModalities",
        )
    same = {"temperature": "temperature", "topP": "top_p", "seed": "seed"}
    same |= {"presencePenalty": "presence_penalty", "frequencyPenalty": "frequency_penalty"}
    same |= {"stopSequences": "stop", "responseLogprobs": "logprobs", "logprobs": "top_logprobs"}
    for gemini, openai in same.items():
        if config.get(gemini) is not None:
            out[openai] = config[gemini]
    out.update(_response_format(config))
    effort = _effort(config.get("thinkingConfig") or {})
    if effort:
        out["reasoning_effort"] = effort
    return out


def _response_format(config: JSONObject) -> JSONObject:
    mime = config.get("responseMimeType") or "text/plain"
    schema = config.get("responseJsonSchema")
    if schema is None and config.get("responseSchema"):
        schema = json_schema(config["responseSchema"])
    if mime == "text/plain" and schema is None:
        return {}
    if mime not in ("application/json", "text/plain"):
        raise InvalidRequest(
            f"generationConfig.responseMimeType: only Gemini models answer {mime!r}",
            param="generationConfig.responseMimeType",
        )
    if schema is None:
        return {"response_format": {"type": "json_object"}}
    named = {"name": "response", "schema": schema}
    return {"response_format": {"type": "json_schema", "json_schema": named}}


def _effort(thinking: JSONObject) -> str | None:
    level = thinking.get("thinkingLevel")
    if level and level != "THINKING_LEVEL_UNSPECIFIED":
        return str(level).lower()
    budget = thinking.get("thinkingBudget")
    if budget is None or budget < 0:
        return None
    return next((effort for most, effort in BUDGET_EFFORTS if budget <= most), "high")
