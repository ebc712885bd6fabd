"""Recorded usage shapes of each provider, with what the provider's published price list
says each costs: the table the pricing tests (unit and end to end) run over.

`usage` is the provider's own usage object, as its API reports it (Gemini's
`usageMetadata`); `searches` the web searches it reports outside usage (OpenAI's
`web_search_call` output items, Gemini's `groundingMetadata.webSearchQueries`). `expected`
is the published formula written out with the published prices (USD per million tokens is
micro-dollars per token), exact; the charge is it rounded up to a whole micro-dollar.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

D = Decimal


@dataclass(frozen=True)
class Shape:
    id: str
    model: str  # a model of the shipped catalog
    wire: str  # chat (OpenAI Chat Completions), responses, anthropic, gemini, embeddings
    usage: dict[str, Any]
    expected: Decimal  # micro-dollars, exact
    searches: int = 0

    @property
    def charge(self) -> int:
        return int(self.expected.to_integral_value(rounding=ROUND_CEILING))


# Anthropic (platform.claude.com pricing), Claude Sonnet 4.6: input 3, 5m cache writes 3.75,
# 1h cache writes 6, cache hits 0.30, output 15; web search $10 per 1,000 (10,000 micros).
# OpenAI GPT-5.4: input 2.50, cached 0.25, output 15; above 272K prompt tokens 2x input
# (5.00, cached 0.50) and 1.5x output (22.50); web search $10 per 1,000 calls.
# Gemini 3.1 Pro: input 2, cached 0.20, output 12 (thinking included); above 200K prompt
# tokens 4, 0.40, 18; Google Search grounding $14 per 1,000 queries (14,000 micros).
SHAPES = [
    Shape(
        "openai-cached-reasoning",
        "gpt-5-4",
        "chat",
        {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 192,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        # reasoning is inside completion_tokens: never added again
        (2006 - 1920) * D("2.50") + 1920 * D("0.25") + 300 * D("15.00"),
    ),
    Shape(
        "openai-long-context-above",
        "gpt-5-4",
        "chat",
        {
            "prompt_tokens": 300_001,
            "completion_tokens": 1000,
            "total_tokens": 301_001,
            "prompt_tokens_details": {"cached_tokens": 100_000},
        },
        200_001 * D("5.00") + 100_000 * D("0.50") + 1000 * D("22.50"),
    ),
    Shape(
        "openai-long-context-at-threshold",
        "gpt-5-4",
        "chat",
        {"prompt_tokens": 272_000, "completion_tokens": 1000, "total_tokens": 273_000},
        272_000 * D("2.50") + 1000 * D("15.00"),
    ),
    Shape(
        "openai-responses-cached-reasoning-web-search",
        "gpt-5-4",
        "responses",
        {
            "input_tokens": 5000,
            "input_tokens_details": {"cached_tokens": 4096},
            "output_tokens": 800,
            "output_tokens_details": {"reasoning_tokens": 512},
            "total_tokens": 5800,
        },
        904 * D("2.50") + 4096 * D("0.25") + 800 * D("15.00") + 2 * D("10000"),
        searches=2,
    ),
    Shape(
        "anthropic-cache-write-5m",
        "claude-sonnet-4-6",
        "anthropic",
        {
            "input_tokens": 21,
            "cache_creation_input_tokens": 188_086,
            "cache_read_input_tokens": 0,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 188_086,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": 393,
        },
        21 * D(3) + 188_086 * D("3.75") + 393 * D(15),
    ),
    Shape(
        "anthropic-cache-write-1h",
        "claude-sonnet-4-6",
        "anthropic",
        {
            "input_tokens": 10,
            "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 0,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1000,
                "ephemeral_1h_input_tokens": 2000,
            },
            "output_tokens": 50,
        },
        10 * D(3) + 1000 * D("3.75") + 2000 * D(6) + 50 * D(15),
    ),
    Shape(
        "anthropic-cache-read",
        "claude-sonnet-4-6",
        "anthropic",
        {
            "input_tokens": 50,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 100_000,
            "output_tokens": 201,
        },
        50 * D(3) + 100_000 * D("0.30") + 201 * D(15),
    ),
    Shape(
        "anthropic-web-search",
        "claude-sonnet-4-6",
        "anthropic",
        {
            "input_tokens": 6039,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 931,
            "server_tool_use": {"web_search_requests": 3},
        },
        6039 * D(3) + 931 * D(15) + 3 * D(10_000),
    ),
    Shape(
        "gemini-cached-thinking",
        "gemini-3-1-pro",
        "gemini",
        {
            "promptTokenCount": 12_000,
            "cachedContentTokenCount": 8000,
            "candidatesTokenCount": 400,
            "thoughtsTokenCount": 1200,
            "totalTokenCount": 13_600,
        },
        # promptTokenCount includes the cached content; thoughts are output
        4000 * D(2) + 8000 * D("0.20") + (400 + 1200) * D(12),
    ),
    Shape(
        "gemini-tool-prompt-grounding",
        "gemini-3-1-pro",
        "gemini",
        {
            "promptTokenCount": 199_000,
            "toolUsePromptTokenCount": 5000,
            "candidatesTokenCount": 300,
            "totalTokenCount": 204_300,
        },
        # the prompt (199,000) picks the tier, not prompt + tool-use prompt
        (199_000 + 5000) * D(2) + 300 * D(12) + 2 * D(14_000),
        searches=2,
    ),
    Shape(
        "gemini-long-context-above",
        "gemini-3-1-pro",
        "gemini",
        {
            "promptTokenCount": 250_000,
            "candidatesTokenCount": 1000,
            "thoughtsTokenCount": 500,
            "totalTokenCount": 251_500,
        },
        250_000 * D(4) + 1500 * D(18),
    ),
    Shape(
        "gemini-long-context-at-threshold",
        "gemini-3-1-pro",
        "gemini",
        {"promptTokenCount": 200_000, "candidatesTokenCount": 1500, "totalTokenCount": 201_500},
        200_000 * D(2) + 1500 * D(12),
    ),
    Shape(
        "openai-embeddings",
        "text-embedding-3-small",
        "embeddings",
        {"prompt_tokens": 1234, "total_tokens": 1234},
        1234 * D("0.02"),
    ),
    Shape(
        "gemini-embeddings",
        "gemini-embedding-001",
        "embeddings",
        {"prompt_tokens": 777, "total_tokens": 777},
        777 * D("0.15"),
    ),
]
