"""Anthropic Messages ↔ OpenAI Chat Completions, both ways: one import for callers.

`openai_request_to_messages`, `message_to_openai`, `MessagesStreamToOpenAI` and
`fold_stream_usage` serve AnthropicProvider (OpenAI in, Anthropic upstream);
`messages_request_to_openai`, `openai_to_message` and `OpenAIStreamToMessages` serve
Anthropic clients of other providers. The modules below hold them, one direction each.
"""

from bytespike.translate.anthropic_request import openai_request_to_messages
from bytespike.translate.anthropic_response import (
    anthropic_usage,
    message_to_openai,
    openai_to_message,
)
from bytespike.translate.anthropic_stream import MessagesStreamToOpenAI, fold_stream_usage
from bytespike.translate.messages_request import messages_request_to_openai
from bytespike.translate.messages_stream import OpenAIStreamToMessages

__all__ = [
    "MessagesStreamToOpenAI",
    "OpenAIStreamToMessages",
    "anthropic_usage",
    "fold_stream_usage",
    "message_to_openai",
    "messages_request_to_openai",
    "openai_request_to_messages",
    "openai_to_message",
]
