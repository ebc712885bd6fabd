"""The OpenAI Responses request (`CreateResponse` of the OpenAI API reference), as far as the
gateway or a translation reads it: types, ranges and the shape of every input item,
content part, tool and tool choice. See proxy/validation.py.

Item and tool types the gateway does not read (a computer call, a hosted tool) are only
required to name their `type`: an OpenAI model reads them, a translation refuses them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from bytespike.proxy.validation import Schema

Number = float  # strict, yet an integer is a number (as in JSON)
_NOT_AN_OBJECT = "should be a valid dictionary"


class InputText(Schema):
    type: Literal["input_text"]
    text: str


class InputImage(Schema):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputFile(Schema):
    type: Literal["input_file"]
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputText(Schema):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


class Refusal(Schema):
    type: Literal["refusal"]
    refusal: str


InputPart = Annotated[InputText | InputImage | InputFile, Field(discriminator="type")]
# Assistant turns handed back (a previous answer's output) carry output_text and refusals.
MessagePart = Annotated[
    InputText | InputImage | InputFile | OutputText | Refusal, Field(discriminator="type")
]


class Message(Schema):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[MessagePart]
    id: str | None = None
    status: str | None = None


class FunctionCall(Schema):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    namespace: str | None = None
    id: str | None = None
    status: str | None = None


class FunctionCallOutput(Schema):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[InputPart]
    id: str | None = None
    status: str | None = None


class Reasoning(Schema):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[dict[str, Any]] | None = None
    content: list[dict[str, Any]] | None = None
    encrypted_content: str | None = None


class OtherItem(Schema):
    """An item the gateway only passes on (to an OpenAI model): it must name its type."""

    type: str


def _item_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type", "message")  # an easy input message may leave its type out
    if kind in ("message", "function_call", "function_call_output", "reasoning"):
        return str(kind)
    return "other"


Item = Annotated[
    Annotated[Message, Tag("message")]
    | Annotated[FunctionCall, Tag("function_call")]
    | Annotated[FunctionCallOutput, Tag("function_call_output")]
    | Annotated[Reasoning, Tag("reasoning")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_kind, custom_error_type="item", custom_error_message=_NOT_AN_OBJECT),
]


class FunctionTool(Schema):
    type: Literal["function"]
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomTool(Schema):
    type: Literal["custom"]
    name: str = Field(min_length=1)
    description: str | None = None
    format: dict[str, Any] | None = None


class NamespaceTool(Schema):
    """A group of tools; the model calls them by name within the namespace."""

    type: Literal["namespace"]
    name: str = Field(min_length=1)
    description: str | None = None
    tools: list[Annotated[FunctionTool | CustomTool, Field(discriminator="type")]]


class OtherTool(Schema):
    """A hosted tool (web search, file search...) or another kind the gateway passes on."""

    type: str


def _tool_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    return str(kind) if kind in ("function", "namespace", "custom") else "other"


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")]
    | Annotated[NamespaceTool, Tag("namespace")]
    | Annotated[CustomTool, Tag("custom")]
    | Annotated[OtherTool, Tag("other")],
    Discriminator(_tool_kind, custom_error_type="tool", custom_error_message=_NOT_AN_OBJECT),
]


class FunctionChoice(Schema):
    type: Literal["function", "custom"]
    name: str


class AllowedTools(Schema):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class OtherChoice(Schema):
    type: str


def _choice_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "mode"
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind in ("function", "custom"):
        return "named"
    return "allowed" if kind == "allowed_tools" else "other"


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("mode")]
    | Annotated[FunctionChoice, Tag("named")]
    | Annotated[AllowedTools, Tag("allowed")]
    | Annotated[OtherChoice, Tag("other")],
    Discriminator(
        _choice_kind,
        custom_error_type="tool_choice",
        custom_error_message="should be 'none', 'auto', 'required' or an object",
    ),
]


class ReasoningConfig(Schema):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class TextFormat(Schema):
    type: Literal["text"]


class JSONObjectFormat(Schema):
    type: Literal["json_object"]


class JSONSchemaFormat(Schema):
    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(Schema):
    format: (
        Annotated[TextFormat | JSONObjectFormat | JSONSchemaFormat, Field(discriminator="type")]
        | None
    ) = None
    verbosity: Literal["low", "medium", "high"] | None = None


class StreamOptions(Schema):
    include_obfuscation: bool | None = None


class ResponsesRequest(Schema):
    model: str = Field(min_length=1)
    input: str | list[Item]
    instructions: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_output_tokens: int | None = Field(default=None, ge=16)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    reasoning: ReasoningConfig | None = None
    text: TextConfig | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    background: bool | None = None
