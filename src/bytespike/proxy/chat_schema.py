"""The OpenAI Chat Completions request (`CreateChatCompletionRequest` of the OpenAI API
reference), as far as any provider or translation reads it: types, ranges and the shape
of every message, content part, tool and tool call. See proxy/validation.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from bytespike.proxy.validation import Schema

Number = float  # strict, yet an integer is a number (as in JSON)


class TextPart(Schema):
    type: Literal["text"]
    text: str


class RefusalPart(Schema):
    type: Literal["refusal"]
    refusal: str


class ImageURL(Schema):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(Schema):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(Schema):
    data: str
    format: Literal["wav", "mp3"]


class AudioPart(Schema):
    type: Literal["input_audio"]
    input_audio: InputAudio


class File(Schema):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(Schema):
    type: Literal["file"]
    file: File


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]
TextContent = str | list[TextPart]


class FunctionCall(Schema):
    name: str
    arguments: str


class FunctionToolCall(Schema):
    id: str
    type: Literal["function"]
    function: FunctionCall


class CustomCall(Schema):
    name: str
    input: str


class CustomToolCall(Schema):
    id: str
    type: Literal["custom"]
    custom: CustomCall


ToolCall = Annotated[FunctionToolCall | CustomToolCall, Field(discriminator="type")]


class SystemMessage(Schema):
    role: Literal["system", "developer"]
    content: TextContent
    name: str | None = None


class UserMessage(Schema):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(Schema):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    refusal: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    audio: dict[str, Any] | None = None


class ToolMessage(Schema):
    role: Literal["tool"]
    content: TextContent
    tool_call_id: str


class FunctionMessage(Schema):
    role: Literal["function"]
    content: str | None
    name: str


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(Schema):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(Schema):
    type: Literal["function"]
    function: FunctionDefinition


class CustomDefinition(Schema):
    name: str
    description: str | None = None
    format: dict[str, Any] | None = None


class CustomTool(Schema):
    type: Literal["custom"]
    custom: CustomDefinition


Tool = Annotated[FunctionTool | CustomTool, Field(discriminator="type")]


class Named(Schema):
    name: str


class NamedFunctionChoice(Schema):
    type: Literal["function"]
    function: Named


class NamedCustomChoice(Schema):
    type: Literal["custom"]
    custom: Named


class AllowedTools(Schema):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class AllowedToolsChoice(Schema):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[
        NamedFunctionChoice | NamedCustomChoice | AllowedToolsChoice,
        Field(discriminator="type"),
    ]
)


class JSONSchemaFormat(Schema):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextFormat(Schema):
    type: Literal["text"]


class JSONObjectFormat(Schema):
    type: Literal["json_object"]


class JSONSchemaResponseFormat(Schema):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = Annotated[
    TextFormat | JSONObjectFormat | JSONSchemaResponseFormat, Field(discriminator="type")
]


class StreamOptions(Schema):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class Prediction(Schema):
    type: Literal["content"]
    content: TextContent


class ChatRequest(Schema):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    presence_penalty: Number | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: Number | None = Field(default=None, ge=-2, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[str, int] | None = None
    user: str | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionDefinition] | None = None
    function_call: Literal["none", "auto"] | Named | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = (
        None
    )
    metadata: dict[str, str] | None = None
    store: bool | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    prediction: Prediction | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
