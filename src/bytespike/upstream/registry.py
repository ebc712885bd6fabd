"""Which providers serve a catalog model: one per deployment, built from the catalog and the
official SDKs' env vars, with one pooled HTTP client (upstream/client.py) per upstream host
and key; and each call's plan, its deployments in the order to try them (upstream/deployments.py).

OPENAI_BASE_URL ends in /v1 (https://api.openai.com/v1); ANTHROPIC_BASE_URL and
GEMINI_BASE_URL are bare hosts. A deployment's own `base_url`/`api_key_env` win.

Failure policy: a model whose provider has no API key is still served; the upstream's 401
reaches the client as a clear error rather than the gateway refusing to start.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from datetime import timedelta

from bytespike.catalog import Catalog, Deployment, Model
from bytespike.clock import Clock, SystemClock
from bytespike.settings import Settings
from bytespike.upstream import deployments
from bytespike.upstream.anthropic import AnthropicProvider
from bytespike.upstream.base import Endpoint, Provider
from bytespike.upstream.client import Client
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
    """A model's deployments → their Providers, and the health of each (`health`, per
    process). Clients are created lazily inside the running loop. `clock` and `rng` are
    the breakers' time and the weighted choice's randomness (seams for tests)."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._catalog = catalog
        self._settings = settings
        self._env = os.environ if env is None else env
        self._rng = rng or random.Random()  # noqa: S311 - spreads load; no secret depends on it
        cooldown = timedelta(seconds=settings.upstream_breaker_cooldown_seconds)
        self.health = deployments.Health(
            clock or SystemClock(), failures=settings.upstream_breaker_failures, cooldown=cooldown
        )
        for model in catalog.models:  # every deployment is in the health report from the start
            for deployment in model.deployments:
                self.health.breaker(model, deployment)
        self._by_model: dict[str, Provider] = {}
        self._by_deployment: dict[tuple[str, str], Provider] = {}
        self._shared: dict[tuple[str, str, str | None, bool], Provider] = {}
        self._clients: list[Client] = []

    def for_model(self, model: Model) -> Provider:
        """The provider of the model's first deployment by priority, for calls that hold no
        money and fall back to no other (token counts)."""
        provider = self._by_model.get(model.id)
        if provider is None:
            provider = self._by_model[model.id] = self._build(model)
        return provider

    def for_deployment(self, model: Model, deployment: Deployment) -> Provider:
        key = (model.id, deployment.name)
        provider = self._by_deployment.get(key)
        if provider is None:
            provider = self._by_deployment[key] = self._build(model.on(deployment))
        return provider

    def plan(self, model: Model) -> deployments.Plan:
        """One call's deployments, in the order it tries them, each with its provider and
        breaker, and the most tries it may make (`upstream_attempts`)."""
        routes = [
            deployments.Route(d, self.for_deployment(model, d), self.health.breaker(model, d))
            for d in deployments.order(model.deployments, self._rng)
        ]
        return deployments.Plan(model, routes, attempts=self._settings.upstream_attempts)

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
        client = self._client()
        provider: Provider
        if model.provider == "anthropic":
            provider = AnthropicProvider(name="anthropic", endpoint=endpoint, client=client)
        elif model.provider == "gemini":
            provider = GeminiProvider(name="gemini", endpoint=endpoint, client=client)
        elif model.provider == "openai":
            provider = OpenAIResponsesProvider(name="openai", endpoint=endpoint, client=client)
        else:
            compatible = OpenAIResponsesProvider if model.responses_api else OpenAIProvider
            provider = compatible(
                name="openai-compatible",
                endpoint=endpoint,
                client=client,
                max_tokens_field="max_tokens",
            )
        self._shared[shared_key] = provider
        return provider

    def _client(self) -> Client:
        client = Client(self._settings.upstream_pool_size)
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()
        self._by_model.clear()
        self._by_deployment.clear()
        self._shared.clear()
