"""Which provider serves a catalog model: built once at start-up from the catalog and the
official SDKs' env vars, with one pooled aiohttp session per upstream host.

OPENAI_BASE_URL ends in /v1 (https://api.openai.com/v1); ANTHROPIC_BASE_URL and
GEMINI_BASE_URL are bare hosts. A catalog entry's own `base_url`/`api_key_env` win.

Failure policy: a model whose provider has no API key is still served; the upstream's 401
reaches the client as a clear error rather than the gateway refusing to start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import aiohttp

from bytespike.catalog import Catalog, Model
from bytespike.settings import Settings
from bytespike.upstream.anthropic import AnthropicProvider
from bytespike.upstream.base import Endpoint, Provider
from bytespike.upstream.gemini import GeminiProvider
from bytespike.upstream.mock import MockProvider
from bytespike.upstream.openai import OpenAIProvider
from bytespike.upstream.openai_responses import OpenAIResponsesProvider

DEFAULTS = {
    "openai": ("OPENAI_BASE_URL", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "anthropic": ("ANTHROPIC_BASE_URL", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    "gemini": ("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com", "GEMINI_API_KEY"),
    "openai-compatible": ("", "", ""),
}


class Providers:
    """Model id → its Provider. Sessions are created lazily inside the running loop."""

    def __init__(
        self, catalog: Catalog, settings: Settings, env: Mapping[str, str] | None = None
    ) -> None:
        self._catalog = catalog
        self._settings = settings
        self._env = os.environ if env is None else env
        self._by_model: dict[str, Provider] = {}
        self._shared: dict[tuple[str, str, str | None, bool], Provider] = {}
        self._sessions: list[aiohttp.ClientSession] = []

    def for_model(self, model: Model) -> Provider:
        provider = self._by_model.get(model.id)
        if provider is None:
            provider = self._by_model[model.id] = self._build(model)
        return provider

    def endpoint(self, model: Model) -> Endpoint:
        url_var, default_url, key_var = DEFAULTS[model.provider]
        base_url = model.base_url or self._env.get(url_var) or default_url
        key_name = model.api_key_env or key_var
        api_key = self._env.get(key_name) if key_name else None
        return Endpoint(
            base_url=base_url.rstrip("/"),
            api_key=api_key or None,
            connect_timeout=self._settings.upstream_connect_timeout_seconds,
            read_timeout=self._settings.upstream_read_timeout_seconds,
        )

    def _build(self, model: Model) -> Provider:
        if model.provider == "mock":
            return MockProvider()
        endpoint = self.endpoint(model)
        shared_key = (model.provider, endpoint.base_url, endpoint.api_key, model.responses_api)
        if shared_key in self._shared:
            return self._shared[shared_key]
        session = self._session()
        provider: Provider
        if model.provider == "anthropic":
            provider = AnthropicProvider(name="anthropic", endpoint=endpoint, session=session)
        elif model.provider == "gemini":
            provider = GeminiProvider(name="gemini", endpoint=endpoint, session=session)
        elif model.provider == "openai":
            provider = OpenAIResponsesProvider(name="openai", endpoint=endpoint, session=session)
        else:
            compatible = OpenAIResponsesProvider if model.responses_api else OpenAIProvider
            provider = compatible(
                name="openai-compatible",
                endpoint=endpoint,
                session=session,
                max_tokens_field="max_tokens",
            )
        self._shared[shared_key] = provider
        return provider

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._settings.upstream_pool_size, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        self._sessions.append(session)
        return session

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()
        self._sessions.clear()
        self._by_model.clear()
        self._shared.clear()
