"""Gemini's request bodies (https://ai.google.dev/api/generate-content, /api/tokens,
/api/embeddings) as far as any provider or translation reads them: `GenerateContentRequest`
(contents, systemInstruction, tools, toolConfig, generationConfig with thinkingConfig and
structured output, safetySettings, cachedContent), `CountTokensRequest`, `EmbedContentRequest`
and `BatchEmbedContentsRequest`. See proxy/validation.py.

Gemini reads its JSON field names in camelCase or snake_case (`system_instruction`,
`inline_data`), as protobuf's JSON mapping does; `camel_case` writes a body in the first, so
everything after it (the checks, the hold, the translations, the upstream) sees one name.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from bytespike.errors import InvalidRequest
from bytespike.proxy.validation import Schema

Number = float  # strict, yet an integer is a number (as in JSON)


class Blob(Schema):
    mimeType: str
    data: str


class FileData(Schema):
    mimeType: str | None = None
    fileUri: str


class FunctionCall(Schema):
    id: str | None = None
    name: str
    args: dict[str, Any] | None = None


class FunctionResponse(Schema):
    id: str | None = None
    name: str
    response: dict[str, Any]


class ExecutableCode(Schema):
    language: str
    code: str


class CodeExecutionResult(Schema):
    outcome: str
    output: str | None = None


class Part(Schema):
    text: str | None = None
    inlineData: Blob | None = None
    fileData: FileData | None = None
    functionCall: FunctionCall | None = None
    functionResponse: FunctionResponse | None = None
    executableCode: ExecutableCode | None = None
    codeExecutionResult: CodeExecutionResult | None = None
    thought: bool | None = None
    thoughtSignature: str | None = None
    videoMetadata: dict[str, Any] | None = None
    partMetadata: dict[str, Any] | None = None


class Content(Schema):
    role: Literal["user", "model", "function"] | None = None
    parts: list[Part]


class SystemInstruction(Schema):
    role: str | None = None  # Gemini reads none here
    parts: list[Part]


class FunctionDeclaration(Schema):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    parametersJsonSchema: Any = None
    response: dict[str, Any] | None = None
    responseJsonSchema: Any = None
    behavior: Literal["UNSPECIFIED", "BLOCKING", "NON_BLOCKING"] | None = None


class Tool(Schema):
    functionDeclarations: list[FunctionDeclaration] | None = None


class FunctionCallingConfig(Schema):
    mode: Literal["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"] | None = None
    allowedFunctionNames: list[str] | None = None


class ToolConfig(Schema):
    functionCallingConfig: FunctionCallingConfig | None = None


class SafetySetting(Schema):
    category: str
    threshold: str


ThinkingLevel = Literal["THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH"]


class ThinkingConfig(Schema):
    includeThoughts: bool | None = None
    thinkingBudget: int | None = Field(default=None, ge=-1)
    thinkingLevel: ThinkingLevel | None = None


class GenerationConfig(Schema):
    stopSequences: list[str] | None = Field(default=None, max_length=5)
    responseMimeType: str | None = None
    responseSchema: dict[str, Any] | None = None
    responseJsonSchema: Any = None
    responseModalities: list[str] | None = None
    candidateCount: int | None = Field(default=None, ge=1)
    maxOutputTokens: int | None = Field(default=None, ge=1)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    topP: Number | None = Field(default=None, ge=0, le=1)
    topK: int | None = Field(default=None, ge=1)
    seed: int | None = None
    presencePenalty: Number | None = None
    frequencyPenalty: Number | None = None
    responseLogprobs: bool | None = None
    logprobs: int | None = Field(default=None, ge=0, le=20)
    thinkingConfig: ThinkingConfig | None = None


class GenerateContentRequest(Schema):
    model: str | None = None  # the path names it; a body may repeat it
    contents: list[Content] = Field(min_length=1)
    systemInstruction: SystemInstruction | None = None
    tools: list[Tool] | None = None
    toolConfig: ToolConfig | None = None
    safetySettings: list[SafetySetting] | None = None
    generationConfig: GenerationConfig | None = None
    cachedContent: str | None = None


class CountTokensRequest(Schema):
    contents: list[Content] | None = None
    generateContentRequest: GenerateContentRequest | None = None


TaskType = Literal[
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
]


class EmbedContentRequest(Schema):
    model: str | None = None  # required inside a batch, where it must name the path's model
    content: Content
    taskType: TaskType | None = None
    title: str | None = None
    outputDimensionality: int | None = Field(default=None, ge=1)


class BatchEmbedContentsRequest(Schema):
    requests: list[EmbedContentRequest] = Field(min_length=1)


# Values whose keys are the client's own, not Gemini's: function arguments and results,
# JSON schemas, metadata. They pass as sent. (A Schema's `properties` keeps its keys but
# not its values, which are Schemas again.)
_OPAQUE = frozenset(
    {"args", "response", "parametersJsonSchema", "responseJsonSchema", "partMetadata"}
)
_SNAKE = re.compile(r"_([a-z0-9])")


def camel_case(value: Any, *, names: bool = True) -> Any:
    """`value` with Gemini's snake_case field names written in camelCase, or 400 for a field
    given under both names. `names=False`: a map whose keys are the client's own."""
    if isinstance(value, list):
        return [camel_case(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _SNAKE.sub(lambda m: m.group(1).upper(), key) if names else key
        if name in out:
            raise InvalidRequest(f"{name}: given twice (as {key!r} too)", param=name)
        if name in _OPAQUE:
            out[name] = item
        else:
            out[name] = camel_case(item, names=name != "properties")
    return out
