"""The Anthropic Messages request (https://docs.anthropic.com/en/api/messages), as far as
any provider or translation reads it. Content blocks of types listed here are checked
field by field; other block and tool types (server tools, newer blocks) pass to Anthropic
as sent, and the translation to other providers refuses them by name. See
proxy/validation.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from bytespike.proxy.validation import Schema

Number = float  # strict, yet an integer is a number (as in JSON)


class TextBlock(Schema):
    type: Literal["text"]
    text: str


class Base64Source(Schema):
    type: Literal["base64"]
    media_type: str
    data: str


class URLSource(Schema):
    type: Literal["url"]
    url: str


class OtherSource(Schema):
    type: str


def _source_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if kind in ("base64", "url") else "other"


Source = Annotated[
    Annotated[Base64Source, Tag("base64")]
    | Annotated[URLSource, Tag("url")]
    | Annotated[OtherSource, Tag("other")],
    Discriminator(_source_kind),
]


class ImageBlock(Schema):
    type: Literal["image"]
    source: Source


class DocumentBlock(Schema):
    type: Literal["document"]
    source: Source


class ToolUseBlock(Schema):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


ResultPart = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[OtherSource, Tag("other")],
    Discriminator(lambda v: _kind(v, ("text", "image", "document"))),
]


class ToolResultBlock(Schema):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ResultPart] | None = None
    is_error: bool | None = None


class ThinkingBlock(Schema):
    type: Literal["thinking"]
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(Schema):
    type: Literal["redacted_thinking"]
    data: str


class OtherBlock(Schema):
    type: str


_BLOCKS = ("text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking")


def _kind(value: Any, known: tuple[str, ...] = _BLOCKS) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if kind in known else "other"


Block = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_kind),
]


class MessageParam(Schema):
    # "system" inside `messages` is not in the public reference, but Claude Code sends it
    # (under a beta); each provider gets it where it takes system text (proxy/messages.py).
    role: Literal["user", "assistant", "system"]
    content: str | list[Block]


class CustomTool(Schema):
    type: Literal["custom"] | None = None
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any]


class ServerTool(Schema):
    type: str
    name: str


Tool = Annotated[
    Annotated[CustomTool, Tag("custom")] | Annotated[ServerTool, Tag("server")],
    Discriminator(
        lambda v: "custom" if _kind(v, ("custom",)) == "custom" or _untyped(v) else "server"
    ),
]


def _untyped(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") is None


class ToolChoice(Schema):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(Schema):
    type: Literal["enabled", "disabled", "adaptive", "between_tools"]
    budget_tokens: int | None = Field(default=None, ge=1)
    display: Literal["summarized", "omitted"] | None = None


class OutputConfig(Schema):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: dict[str, Any] | None = None


class Metadata(Schema):
    user_id: str | None = None


class MessagesRequest(Schema):
    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    system: str | list[TextBlock] | None = None
    stream: bool | None = None
    temperature: Number | None = Field(default=None, ge=0, le=1)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    metadata: Metadata | None = None
