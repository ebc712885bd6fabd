"""Hypothesis strategies for the fuzz test (test_fuzz.py): what a client may send.

Arbitrary JSON rarely gets past a route's first check, so most bodies start valid (Chat
Completions, Responses and embeddings as OpenAI documents them, Anthropic Messages with
every kind of block, Gemini's generateContent, countTokens and embedContent bodies in
camelCase or snake_case, the API's own bodies) and then have one to three places anywhere
inside replaced by a hostile value (wrong type, huge or negative number, deep nesting,
non-ASCII, empty container, null), removed, or joined by an unknown field. The rest is
arbitrary JSON and bytes that are not JSON at all.

`encode` writes a body as the client sends it. Nesting deeper than Python's own JSON
encoder goes (`Deep`) is written out by hand.
"""

from __future__ import annotations

import copy
import json
import string
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]

MODELS = ("mock", "gpt-5-4", "claude-sonnet-4-6", "gemini-3-1-pro")
EVENTS = (
    "system.balance.notify.dispatched",
    "balance.topped_up",
    "quota.cap_reached",
    "key.created",
    "key.revoked",
    "org.paused",
    "webhook.endpoint.disabled",
)  # what an endpoint may subscribe to (webhook.test is sent to every endpoint on request)
# A public address written as a literal: registering it resolves nothing over the network.
WEBHOOK_URL = "https://93.184.216.34/hooks/bytespike"
PNG = (  # one transparent pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@dataclass(frozen=True)
class Deep:
    """`depth` nested lists or objects: deeper than `json.dumps` (or orjson's encoder, 255)
    can write, as deep as orjson's parser takes (1,024) and beyond."""

    depth: int
    kind: str = "list"

    def text(self) -> str:
        if self.kind == "list":
            return "[" * self.depth + "]" * self.depth
        return '{"a":' * self.depth + "{}" + "}" * self.depth


@dataclass(frozen=True)
class Raw:
    """A body sent as these bytes, not as JSON."""

    data: bytes


def encode(body: Any) -> bytes:
    """The bytes a client sends for `body` (a JSON value that may hold `Deep`s, or `Raw`)."""
    if isinstance(body, Raw):
        return body.data
    deeps: dict[str, Deep] = {}

    def placeholder(value: Any) -> Any:
        if isinstance(value, Deep):
            token = f"\x00deep{len(deeps)}\x00"
            deeps[json.dumps(token)] = value
            return token
        if isinstance(value, dict):
            return {k: placeholder(v) for k, v in value.items()}
        if isinstance(value, list):
            return [placeholder(v) for v in value]
        return value

    text = json.dumps(placeholder(body), ensure_ascii=False)
    for token, deep in deeps.items():
        text = text.replace(token, deep.text(), 1)
    return text.encode()


# Hostile values -------------------------------------------------------------------------

EDGE_INTEGERS = (
    0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64,
    10**30, -(10**30),
)  # fmt: skip
EDGE_FLOATS = (0.5, -0.0, 1e-300, 1e308, -1e308, 3.0, 1.5e19)
EDGE_TEXTS = (
    "", " ", "\x00", "null", "0", "-1", "1e999", "true", "[]", "{}", "auto", "user", "image",
    "text", "tool_use", "function", "mock", "🦄" * 3, "é" * 5, "\u202e", "\uff41\uff42",
    "日本語", "a" * 5000, "\ud7ff\ue000", "https://", "data:;base64,", "$ref", "#/$defs/x",
)  # fmt: skip
FIELD_NAMES = (
    "model", "messages", "role", "content", "type", "text", "stream", "max_tokens", "tools",
    "tool_choice", "system", "id", "name", "input", "source", "url", "image_url", "usage",
    "__proto__", "extra_field", "", "🦄",
)  # fmt: skip

keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(EDGE_INTEGERS),
    st.integers(),
    st.sampled_from(EDGE_FLOATS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_TEXTS),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
deep = st.builds(
    Deep,
    st.sampled_from((2, 64, 254, 255, 256, 300, 500, 900, 1000, 1020, 1023, 1024, 1025))
    | st.integers(1, 1100),
    st.sampled_from(("list", "dict")),
)
hostile = st.one_of(
    scalars,
    st.sampled_from(([], {}, [None], [{}], {"type": None}, [[]], {"": {}})),
    json_values,
    deep,
    st.builds(lambda n, item: [item] * n, st.integers(100, 5000), st.sampled_from((0, "x", {}))),
)

RAW = (
    b"", b"{", b"}", b"null", b"[]", b'"text"', b"1", b"1e400", b"NaN", b'{"a": NaN}',
    b"\xef\xbb\xbf{}", b"\xff\xfe\x00", b"{'model': 'mock'}", b'{"model": "mock",}',
    b'{"model": "mock", "messages": [', b'{"model": "mock"} trailing',
    b'{"model": "mock", "messages": [{"role": "user", "content": "\\ud800"}]}',
    b'{"model": "mock", "model": 1}', b'{"model": "mock", "messages": [{"role": "user",'
    b' "content": "\xc3\x28"}]}',
)  # fmt: skip


@st.composite
def _cut(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Raw:
    data = encode(draw(valid))
    return Raw(data[: draw(st.integers(1, max(1, len(data) - 1)))])


def raw_bodies(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Raw]:
    """Bytes that are not a JSON object: junk, near misses, valid bodies cut short."""
    return st.one_of(st.sampled_from(RAW).map(Raw), st.binary(max_size=64).map(Raw), _cut(valid))


# Mutation -------------------------------------------------------------------------------


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every place inside `value`, innermost first: Hypothesis favours (and shrinks towards)
    the first, and the deep places are the ones that arbitrary JSON never reaches."""
    if isinstance(value, dict):
        items: list[tuple[str | int, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    inner = [path for key, child in items for path in paths(child, (*prefix, key))]
    return inner + [(*prefix, key) for key, _ in items]


def _parent(body: Any, path: Path) -> Any:
    for step in path[:-1]:
        body = body[step]
    return body


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A valid body with one to three places replaced, removed or given a new sibling."""
    body = copy.deepcopy(draw(valid))
    for _ in range(draw(st.integers(1, 3))):
        places = paths(body)
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent, key = _parent(body, path), path[-1]
        action = draw(st.sampled_from(("replace", "remove", "add")))
        # A copy: sampled values are shared, and a later round may change this one in place.
        value = copy.deepcopy(draw(hostile))
        if action == "replace":
            parent[key] = value
        elif action == "remove":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(keys)] = value
        else:
            parent.insert(key, value)
    return body


def bodies(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """What the fuzz sends a route whose valid bodies are `valid`."""
    return st.one_of(
        valid,
        mutated(valid),
        mutated(valid),
        valid,
        mutated(valid),
        json_values,
        raw_bodies(valid),
    )


# Chat Completions (OpenAI) ----------------------------------------------------------------

words = st.text(alphabet=string.ascii_letters + " .,!?é日🦄", min_size=1, max_size=30)
names = st.sampled_from(("get_weather", "lookup", "noop", "search_docs"))
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": ["string", "null"], "enum": ["c", "f", None]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "where": {"$ref": "#/$defs/place"},
    },
    "required": ["city"],
    "additionalProperties": False,
    "$defs": {"place": {"type": "object", "properties": {"lat": {"type": "number"}}}},
}
schemas = st.sampled_from(({"type": "object", "properties": {}}, WEATHER_SCHEMA))
image_urls = st.sampled_from(
    (
        "https://example.com/cat.png",
        f"data:image/png;base64,{PNG}",
        "https://example.com/photo.jpg?size=large",
    )
)
chat_text_parts = st.builds(lambda t: {"type": "text", "text": t}, words)
chat_images = st.builds(
    lambda url, detail: {"type": "image_url", "image_url": {"url": url, "detail": detail}},
    image_urls,
    st.sampled_from(("auto", "low", "high")),
)
chat_media = st.sampled_from(
    (
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {
            "type": "file",
            "file": {"file_data": f"data:application/pdf;base64,{PNG}", "filename": "a.pdf"},
        },
    )
)


def user_messages(model: str) -> st.SearchStrategy[dict[str, Any]]:
    """A user turn; audio and files only where the model's provider takes them."""
    parts = chat_text_parts | chat_images
    if not model.startswith("claude"):
        parts |= chat_media
    return st.builds(
        lambda content: {"role": "user", "content": content},
        words | st.lists(parts, min_size=1, max_size=3),
    )


system_messages = st.builds(
    lambda role, content: {"role": role, "content": content},
    st.sampled_from(("system", "developer")),
    words | st.lists(chat_text_parts, min_size=1, max_size=2),
)


@st.composite
def tool_round(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An assistant turn calling a tool, and the tool's answer."""
    name = draw(names)
    call = {
        "id": "call_" + draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)),
        "type": "function",
        "function": {"name": name, "arguments": json.dumps({"city": draw(words)})},
    }
    said = draw(st.none() | words)
    assistant = {"role": "assistant", "content": said, "tool_calls": [call]}
    result = draw(words | st.lists(chat_text_parts, min_size=1, max_size=2))
    return [assistant, {"role": "tool", "tool_call_id": call["id"], "content": result}]


@st.composite
def chat_messages(draw: st.DrawFn, model: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = draw(st.lists(system_messages, max_size=1))
    messages.append(draw(user_messages(model)))
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            messages.extend(draw(tool_round()))
        else:
            messages.append({"role": "assistant", "content": draw(words)})
            messages.append(draw(user_messages(model)))
    return messages


def _chat_tool(name: str, description: str, schema: Any, strict: bool) -> dict[str, Any]:
    function = {"name": name, "description": description, "parameters": schema, "strict": strict}
    return {"type": "function", "function": function}


chat_tools = st.lists(
    st.builds(_chat_tool, names, words, schemas, st.booleans()),
    min_size=1,
    max_size=2,
    unique_by=lambda tool: str(tool["function"]["name"]),
)
response_formats = st.sampled_from(
    (
        {"type": "text"},
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "answer", "schema": WEATHER_SCHEMA}},
        {
            "type": "json_schema",
            "json_schema": {"name": "answer", "strict": True, "schema": {"type": "object"}},
        },
    )
)
CHAT_OPTIONAL = {
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "max_completion_tokens": st.integers(1, 4096),
    "max_tokens": st.integers(1, 4096),
    "n": st.just(1),
    "seed": st.integers(-(2**31), 2**31),
    "stop": words | st.lists(words, min_size=1, max_size=4),
    "presence_penalty": st.floats(-2, 2),
    "frequency_penalty": st.floats(-2, 2),
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(0, 20),
    "user": words,
    "metadata": st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=8), words),
    "reasoning_effort": st.sampled_from(("none", "minimal", "low", "medium", "high", "xhigh")),
    "parallel_tool_calls": st.booleans(),
    "response_format": response_formats,
    "service_tier": st.sampled_from(("auto", "default", "flex")),
    "logit_bias": st.dictionaries(
        st.integers(0, 100_000).map(str), st.integers(-100, 100), max_size=3
    ),
    "store": st.booleans(),
    "verbosity": st.sampled_from(("low", "medium", "high")),
    "prompt_cache_key": words,
}


@st.composite
def chat_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A valid Chat Completions request (per the OpenAI reference)."""
    body: dict[str, Any] = {"model": model, "messages": draw(chat_messages(model))}
    body |= draw(st.fixed_dictionaries({}, optional=CHAT_OPTIONAL))
    if draw(st.booleans()):
        body["tools"] = draw(chat_tools)
        name = body["tools"][0]["function"]["name"]
        named = {"type": "function", "function": {"name": name}}
        choice = draw(st.sampled_from(("auto", "none", "required", named, None)))
        if choice is not None:
            body["tool_choice"] = choice
    if stream or draw(st.booleans()):
        body["stream"] = stream
    if stream and draw(st.booleans()):
        body["stream_options"] = {"include_usage": draw(st.booleans())}
    return body


# Messages (Anthropic) -------------------------------------------------------------------

text_blocks = st.builds(
    lambda text, cached: (
        {"type": "text", "text": text}
        | ({"cache_control": {"type": "ephemeral"}} if cached else {})
    ),
    words,
    st.booleans(),
)
image_sources = st.sampled_from(
    (
        {"type": "base64", "media_type": "image/png", "data": PNG},
        {"type": "url", "url": "https://example.com/cat.png"},
    )
)
image_blocks = st.builds(lambda source: {"type": "image", "source": source}, image_sources)
document_blocks = st.just(
    {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PNG},
    }
)


def user_blocks(native: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A user turn's blocks; documents only for Claude (no other provider reads them)."""
    blocks = st.one_of(text_blocks, text_blocks, image_blocks)
    return st.lists(blocks | document_blocks if native else blocks, min_size=1, max_size=3)


@st.composite
def messages_tool_round(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An assistant turn using a tool, and the user's tool_result."""
    use_id = "toolu_" + draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=8))
    use = {"type": "tool_use", "id": use_id, "name": draw(names), "input": {"city": draw(words)}}
    said = draw(st.lists(text_blocks, max_size=1))
    thinking = draw(
        st.lists(st.just({"type": "thinking", "thinking": "hmm", "signature": "sig"}), max_size=1)
    )
    content = draw(words | st.lists(text_blocks | image_blocks, min_size=1, max_size=2))
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": use_id, "content": content}
    if draw(st.booleans()):
        result["is_error"] = draw(st.booleans())
    return [
        {"role": "assistant", "content": [*thinking, *said, use]},
        {"role": "user", "content": [result, *draw(st.lists(text_blocks, max_size=1))]},
    ]


@st.composite
def anthropic_messages(draw: st.DrawFn, native: bool) -> list[dict[str, Any]]:
    said_by_user = words | user_blocks(native)
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(said_by_user)}]
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            messages.extend(draw(messages_tool_round()))
        else:
            said = draw(words | st.lists(text_blocks, min_size=1, max_size=2))
            messages.append({"role": "assistant", "content": said})
            messages.append({"role": "user", "content": draw(said_by_user)})
    return messages


custom_tools = st.builds(
    lambda name, description, schema: {
        "name": name,
        "description": description,
        "input_schema": schema,
    },
    names,
    words,
    schemas,
)
server_tools = st.just({"type": "web_search_20250305", "name": "web_search", "max_uses": 3})


def anthropic_tools(native: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Tools; server tools only for Claude (elsewhere they are refused by design)."""
    return st.lists(
        custom_tools | server_tools if native else custom_tools,
        min_size=1,
        max_size=2,
        unique_by=lambda tool: str(tool["name"]),
    )


MESSAGES_OPTIONAL = {
    "system": words | st.lists(text_blocks, min_size=1, max_size=2),
    "stop_sequences": st.lists(words, min_size=1, max_size=3),
    "temperature": st.floats(0, 1),
    "top_p": st.floats(0, 1),
    "top_k": st.integers(1, 500),
    "metadata": st.builds(lambda user: {"user_id": user}, words),
    "service_tier": st.sampled_from(("auto", "standard_only")),
    "thinking": st.sampled_from(({"type": "enabled", "budget_tokens": 1024}, {"type": "disabled"})),
}


@st.composite
def messages_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A valid Anthropic Messages request; what only Claude reads only for Claude."""
    native = model.startswith("claude")
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": draw(st.integers(1, 4096)),
        "messages": draw(anthropic_messages(native)),
    }
    body |= draw(st.fixed_dictionaries({}, optional=MESSAGES_OPTIONAL))
    if draw(st.booleans()):
        body["tools"] = draw(anthropic_tools(native))
        choices: list[dict[str, Any]] = [{"type": "auto"}, {"type": "any"}, {"type": "none"}]
        choices.append({"type": "tool", "name": body["tools"][0]["name"]})
        choice = draw(st.sampled_from(choices) | st.none())
        if choice is not None:
            if draw(st.booleans()):
                choice = {**choice, "disable_parallel_tool_use": True}
            body["tool_choice"] = choice
    if stream or draw(st.booleans()):
        body["stream"] = stream
    return body


# The bytespike API's own bodies -----------------------------------------------------------

usernames = st.sampled_from(("ada", "bob")) | st.text(
    string.ascii_lowercase + string.digits, min_size=1, max_size=10
)
org_names = st.sampled_from(("Dosia AI",)) | st.text(min_size=1, max_size=12)
money = st.one_of(
    st.integers(0, 1000),
    st.floats(0, 1000).map(lambda usd: round(usd, 2)),
    st.sampled_from(("10", "0.000001", "250.5", "0")),
)
threshold_bodies = st.builds(lambda usd: {"low_balance_threshold_usd": usd}, money)
webhook_bodies = st.fixed_dictionaries(
    {
        "url": st.just(WEBHOOK_URL),
        "events": st.lists(st.sampled_from(EVENTS), min_size=1, unique=True),
    },
    optional={"description": words},
)
webhook_changes = st.fixed_dictionaries(
    {},
    optional={
        "url": st.just(WEBHOOK_URL),
        "events": st.lists(st.sampled_from(EVENTS), unique=True),
        "description": words,
        "enabled": st.booleans(),
    },
)
owners = st.one_of(
    st.builds(lambda user: {"user": user}, usernames),
    st.builds(lambda org: {"org": org}, org_names),
)
new_users = st.builds(
    lambda name, tier: {"username": name, "email": f"{name}@dosia.ai", "tier": tier},
    usernames,
    st.sampled_from(("individual", "enterprise")),
)
new_orgs = st.builds(lambda name: {"name": name}, org_names)
new_members = st.builds(
    lambda name, role: {"username": name, "role": role},
    usernames,
    st.sampled_from(("owner", "admin", "member")),
)
top_ups = st.builds(
    lambda owner, usd, reference: (
        {**owner, "usd": usd} | ({"reference": reference} if reference else {})
    ),
    owners,
    money,
    st.none() | words,
)
thresholds = st.builds(lambda owner, usd: {**owner, "threshold_usd": usd}, owners, money)
roster_entries = st.fixed_dictionaries({"id": st.sampled_from(MODELS)}, optional={"cap_usd": money})
new_keys = st.fixed_dictionaries(
    {"user": usernames},
    optional={
        "org": org_names,
        "name": words,
        "models": st.lists(roster_entries, max_size=3),
        "rate_limit": st.integers(1, 1_000_000),
        "quota_reset": st.sampled_from(("daily", "weekly", "monthly")),
    },
)

# Path parameters and query strings --------------------------------------------------------

path_ids = st.one_of(
    st.integers(1, 5).map(str),
    st.sampled_from(EDGE_INTEGERS).map(str),
    st.sampled_from(("0", "-1", "1.0", "1e3", "0x10", "", "٣", "²", "\uff11")),
    st.text(max_size=12),
)
days = st.one_of(
    st.dates().map(lambda day: day.isoformat()),
    st.sampled_from(("2026-03-10", "2026-02-30", "0001-01-01", "9999-12-31", "2026-3-1")),
    st.text(max_size=12),
)
usage_queries = st.lists(
    st.one_of(
        st.tuples(st.just("since"), days),
        st.tuples(st.just("until"), days),
        st.tuples(st.just("limit"), path_ids),
        st.tuples(st.just("cursor"), path_ids),
        st.tuples(st.text(max_size=6), st.text(max_size=12)),
    ),
    max_size=5,
)

# Responses (OpenAI) -------------------------------------------------------------------------

response_text_parts = st.builds(lambda t: {"type": "input_text", "text": t}, words)
response_images = st.builds(
    lambda url, detail: {"type": "input_image", "image_url": url, "detail": detail},
    image_urls,
    st.sampled_from(("auto", "low", "high")),
)


def response_messages(model: str) -> st.SearchStrategy[dict[str, Any]]:
    """A user (or system, developer) message item; the type may be left out."""
    parts = response_text_parts | response_images
    return st.builds(
        lambda role, content, typed: (
            {"role": role, "content": content} | ({"type": "message"} if typed else {})
        ),
        st.sampled_from(("user", "user", "system", "developer")),
        words | st.lists(parts, min_size=1, max_size=3),
        st.booleans(),
    ).map(_text_only_unless_user)


def _text_only_unless_user(item: dict[str, Any]) -> dict[str, Any]:
    if item["role"] != "user" and isinstance(item["content"], list):
        item["content"] = [p for p in item["content"] if p["type"] == "input_text"] or "hi"
    return item


@st.composite
def response_tool_round(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A function call the model made (and maybe its text), and the call's output."""
    call_id = "call_" + draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=8))
    items: list[dict[str, Any]] = []
    if draw(st.booleans()):
        said = {"type": "output_text", "text": draw(words), "annotations": []}
        items.append({"type": "message", "role": "assistant", "content": [said]})
    arguments = json.dumps({"city": draw(words)})
    items.append(
        {"type": "function_call", "call_id": call_id, "name": draw(names), "arguments": arguments}
    )
    output = draw(words | st.lists(response_text_parts, min_size=1, max_size=2))
    items.append({"type": "function_call_output", "call_id": call_id, "output": output})
    return items


@st.composite
def response_inputs(draw: st.DrawFn, model: str) -> Any:
    if draw(st.booleans()):
        return draw(words)
    items = [draw(response_messages(model))]
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            items.extend(draw(response_tool_round()))
        else:
            items.append({"role": "assistant", "content": draw(words)})
    return items


def _response_tool(name: str, description: str, schema: Any, strict: bool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": schema,
        "strict": strict,
    }


response_tools = st.lists(
    st.builds(_response_tool, names, words, schemas, st.booleans()),
    min_size=1,
    max_size=2,
    unique_by=lambda tool: str(tool["name"]),
)
text_formats = st.sampled_from(
    (
        {"type": "text"},
        {"type": "json_object"},
        {"type": "json_schema", "name": "answer", "schema": WEATHER_SCHEMA},
        {"type": "json_schema", "name": "answer", "strict": True, "schema": {"type": "object"}},
    )
)
RESPONSES_OPTIONAL = {
    "instructions": words,
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "max_output_tokens": st.integers(16, 4096),
    "user": words,
    "metadata": st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=8), words),
    "reasoning": st.fixed_dictionaries(
        {},
        optional={
            "effort": st.sampled_from(("minimal", "low", "medium", "high")),
            "summary": st.sampled_from(("auto", "concise", "detailed")),
        },
    ),
    "text": st.fixed_dictionaries({}, optional={"format": text_formats}),
    "parallel_tool_calls": st.booleans(),
    "store": st.booleans(),
    "include": st.just(["reasoning.encrypted_content"]),
    "prompt_cache_key": words,
    "truncation": st.sampled_from(("auto", "disabled")),
}


@st.composite
def responses_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A valid Responses request (per the OpenAI reference)."""
    body: dict[str, Any] = {"model": model, "input": draw(response_inputs(model))}
    body |= draw(st.fixed_dictionaries({}, optional=RESPONSES_OPTIONAL))
    if draw(st.booleans()):
        body["tools"] = draw(response_tools)
        named = {"type": "function", "name": body["tools"][0]["name"]}
        choice = draw(st.sampled_from(("auto", "none", "required", named, None)))
        if choice is not None:
            body["tool_choice"] = choice
        if draw(st.booleans()):
            body["tools"].append({"type": "web_search"})  # hosted: left out
    if stream or draw(st.booleans()):
        body["stream"] = stream
    return body


response_ids = st.one_of(
    st.just("resp_" + "0" * 48),
    st.text(string.hexdigits.lower()[:16], min_size=48, max_size=48).map(lambda h: "resp_" + h),
    path_ids,
)

# Embeddings (OpenAI) ------------------------------------------------------------------------

EMBEDDING_MODELS = ("text-embedding-3-small", "gemini-embedding-001")
token_arrays = st.lists(st.integers(0, 100_000), min_size=1, max_size=8)


def embedding_inputs(model: str) -> st.SearchStrategy[Any]:
    """A string, strings, or (where the model's provider takes them: OpenAI) token arrays."""
    texts = words | st.lists(words, min_size=1, max_size=4)
    if model.startswith("gemini"):
        return texts
    return texts | token_arrays | st.lists(token_arrays, min_size=1, max_size=3)


EMBEDDINGS_OPTIONAL = {
    "encoding_format": st.sampled_from(("float", "base64")),
    "dimensions": st.integers(1, 3072),
    "user": words,
}


@st.composite
def embeddings_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A valid embeddings request (per the OpenAI reference); nothing streams here."""
    body: dict[str, Any] = {"model": model, "input": draw(embedding_inputs(model))}
    return body | draw(st.fixed_dictionaries({}, optional=EMBEDDINGS_OPTIONAL))


# Token counts (Anthropic) -------------------------------------------------------------------


@st.composite
def count_tokens_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A Messages request as /v1/messages/count_tokens takes it (generation settings left
    out, as Anthropic's SDK leaves them; the gateway drops them anyway)."""
    body = draw(messages_requests(model, stream))
    if draw(st.booleans()):
        for name in ("max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences"):
            body.pop(name, None)
    return body


# Gemini (generateContent, countTokens, embedContent) -----------------------------------------

GEMINI_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "city": {"type": "STRING", "description": "City name"},
        "unit": {"type": "STRING", "enum": ["c", "f"], "nullable": True},
        "days": {"type": "INTEGER", "minimum": 1, "maximum": 7},
    },
    "required": ["city"],
}
gemini_text = st.builds(lambda t: {"text": t}, words)
gemini_images = st.sampled_from(
    (
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
    )
)
gemini_media = st.sampled_from(
    (
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": PNG}},
    )
)
gemini_native_media = st.sampled_from(
    (
        {"inlineData": {"mimeType": "text/plain", "data": "aGk="}},
        {"fileData": {"mimeType": "video/mp4", "fileUri": "https://example.com/v.mp4"}},
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/a"}},
    )
)


def gemini_user_parts(model: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A user turn's parts; what only Gemini reads only for Gemini, audio and PDFs not for
    Claude (as on Chat Completions)."""
    parts = gemini_text | gemini_text | gemini_images
    if not model.startswith("claude"):
        parts |= gemini_media
    if model.startswith("gemini"):
        parts |= gemini_native_media
    return st.lists(parts, min_size=1, max_size=3)


@st.composite
def gemini_tool_round(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A model turn calling a function (maybe with a thought and text), and its response."""
    name = draw(names)
    call: dict[str, Any] = {"name": name, "args": {"city": draw(words)}}
    answer: dict[str, Any] = {"name": name, "response": {"result": draw(words)}}
    if draw(st.booleans()):
        call["id"] = answer["id"] = "call_" + draw(
            st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
        )
    said = draw(st.lists(gemini_text, max_size=1))
    thought = {"text": "hmm", "thought": True, "thoughtSignature": "c2ln"}
    thinking = draw(st.lists(st.just(thought), max_size=1))
    return [
        {"role": "model", "parts": [*thinking, *said, {"functionCall": call}]},
        {"role": "user", "parts": [{"functionResponse": answer}]},
    ]


@st.composite
def gemini_contents(draw: st.DrawFn, model: str) -> list[dict[str, Any]]:
    def user(parts: list[dict[str, Any]], named: bool) -> dict[str, Any]:
        return {"role": "user", "parts": parts} if named else {"parts": parts}

    contents = [user(draw(gemini_user_parts(model)), draw(st.booleans()))]
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            contents.extend(draw(gemini_tool_round()))
        else:
            contents.append({"role": "model", "parts": [draw(gemini_text)]})
            contents.append(user(draw(gemini_user_parts(model)), True))
    return contents


def _declaration(name: str, description: str, schema: Any, as_json: bool) -> dict[str, Any]:
    key = "parametersJsonSchema" if as_json else "parameters"
    return {"name": name, "description": description, key: schema}


gemini_declarations = st.lists(
    st.builds(
        lambda name, description, json_schema: _declaration(
            name, description, WEATHER_SCHEMA if json_schema else GEMINI_SCHEMA, json_schema
        ),
        names,
        words,
        st.booleans(),
    ),
    min_size=1,
    max_size=2,
    unique_by=lambda declaration: str(declaration["name"]),
)
thinking_configs = st.one_of(
    st.fixed_dictionaries(
        {"thinkingBudget": st.sampled_from((-1, 0, 512, 1024, 8192, 24576))},
        optional={"includeThoughts": st.booleans()},
    ),
    st.builds(lambda level: {"thinkingLevel": level}, st.sampled_from(("LOW", "MEDIUM", "HIGH"))),
)
GENERATION_OPTIONAL = {
    "temperature": st.floats(0, 2),
    "topP": st.floats(0, 1),
    "topK": st.integers(1, 100),
    "maxOutputTokens": st.integers(1, 4096),
    "stopSequences": st.lists(words, min_size=1, max_size=5),
    "candidateCount": st.just(1),
    "seed": st.integers(-(2**31), 2**31 - 1),
    "presencePenalty": st.floats(-2, 2),
    "frequencyPenalty": st.floats(-2, 2),
    "thinkingConfig": thinking_configs,
    "responseMimeType": st.sampled_from(("text/plain", "application/json")),
}
structured = st.sampled_from(
    (
        {"responseMimeType": "application/json", "responseSchema": GEMINI_SCHEMA},
        {"responseMimeType": "application/json", "responseJsonSchema": WEATHER_SCHEMA},
    )
)
safety_settings = st.lists(
    st.builds(
        lambda category, threshold: {"category": category, "threshold": threshold},
        st.sampled_from(("HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_DANGEROUS_CONTENT")),
        st.sampled_from(("BLOCK_NONE", "BLOCK_ONLY_HIGH")),
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def generate_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A valid GenerateContentRequest (per Google's reference); the path names the model
    (and the method whether it streams); what only Gemini reads only for Gemini. In
    camelCase or, as Google's REST examples write it, snake_case."""
    native = model.startswith("gemini")
    body: dict[str, Any] = {"contents": draw(gemini_contents(model))}
    if draw(st.booleans()):
        body["systemInstruction"] = {"parts": draw(st.lists(gemini_text, min_size=1, max_size=2))}
    config = draw(st.fixed_dictionaries({}, optional=GENERATION_OPTIONAL))
    if draw(st.integers(0, 4)) == 0:
        config |= draw(structured)
    if config or draw(st.booleans()):
        body["generationConfig"] = config
    if draw(st.booleans()):
        body["tools"] = [{"functionDeclarations": draw(gemini_declarations)}]
        if native and draw(st.booleans()):
            body["tools"].append({"googleSearch": {}})
        if draw(st.booleans()):
            first = body["tools"][0]["functionDeclarations"][0]["name"]
            calling: dict[str, Any] = {"mode": draw(st.sampled_from(("AUTO", "ANY", "NONE")))}
            if calling["mode"] == "ANY" and draw(st.booleans()):
                calling["allowedFunctionNames"] = [first]
            body["toolConfig"] = {"functionCallingConfig": calling}
    if draw(st.booleans()):
        body["safetySettings"] = draw(safety_settings)
    if native and draw(st.integers(0, 5)) == 0:
        body["cachedContent"] = "cachedContents/abc123"
    if draw(st.integers(0, 5)) == 0:
        body["model"] = f"models/{model}"
    return snake_case(body) if draw(st.integers(0, 3)) == 0 else body


@st.composite
def count_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A valid CountTokensRequest: contents, or a whole generateContentRequest naming its
    model."""
    inner = draw(generate_requests(model, stream))
    contents = inner.get("contents") or [{"parts": [{"text": "hi"}]}]
    if draw(st.booleans()):
        return {"contents": contents}
    return {"generateContentRequest": {**inner, "model": f"models/{model}"}}


TASK_TYPES = ("RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION")


def embed_content(model: str, dimensions: int | None, named: bool) -> Any:
    """One EmbedContentRequest: text parts (all that every embedding model reads)."""
    optional: dict[str, st.SearchStrategy[Any]] = {
        "taskType": st.sampled_from(TASK_TYPES),
        "title": words,
    }
    required: dict[str, st.SearchStrategy[Any]] = {
        "content": st.builds(
            lambda parts: {"parts": parts}, st.lists(gemini_text, min_size=1, max_size=3)
        )
    }
    if named:
        required["model"] = st.just(f"models/{model}")
    if dimensions is not None:
        required["outputDimensionality"] = st.just(dimensions)
    return st.fixed_dictionaries(required, optional=optional)


gemini_dimensions = st.none() | st.integers(1, 3072)


@st.composite
def embed_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A valid EmbedContentRequest (the model named by the path, maybe by the body too)."""
    body = draw(embed_content(model, draw(gemini_dimensions), draw(st.booleans())))
    return snake_case(body) if draw(st.integers(0, 3)) == 0 else body


@st.composite
def batch_embed_requests(draw: st.DrawFn, model: str, stream: bool) -> dict[str, Any]:
    """A valid BatchEmbedContentsRequest: each request names the path's model; one
    outputDimensionality for all (an OpenAI model takes one per call)."""
    dimensions = draw(gemini_dimensions)
    requests = draw(st.lists(embed_content(model, dimensions, True), min_size=1, max_size=4))
    return {"requests": requests}


# Gemini reads protobuf's JSON names in either case; the client's own keys stay as written.
_OPAQUE = frozenset(
    {"args", "response", "parametersJsonSchema", "responseJsonSchema", "partMetadata"}
)


def snake_case(value: Any, *, names: bool = True) -> Any:
    """`value` with Gemini's camelCase field names written in snake_case."""
    if isinstance(value, list):
        return [snake_case(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in key) if names else key
        if key in _OPAQUE:
            out[name] = item
        else:
            out[name] = snake_case(item, names=key != "properties")
    return out


page_queries = st.lists(
    st.one_of(
        st.tuples(
            st.just("pageSize"), st.sampled_from(("1", "2", "50", "1000", "1001")) | path_ids
        ),
        st.tuples(st.just("pageToken"), st.sampled_from(("1", "2", "6")) | path_ids),
        # Not `key`: a key in the query is a credential (test_fuzz.py sends it so).
        st.tuples(st.text(max_size=6).filter(lambda name: name != "key"), st.text(max_size=12)),
    ),
    max_size=3,
)
