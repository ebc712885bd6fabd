"""The model catalog: ids, providers, upstream names and exact prices, loaded once from TOML."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

SHIPPED_CATALOG = Path(__file__).with_name("catalog.toml")
PROVIDERS = ("openai", "anthropic", "gemini", "openai-compatible", "mock")
# What a model does: "chat" models answer the chat routes, "embedding" models the embedding
# routes (/v1/embeddings, Gemini's embedContent); each kind is refused on the other's routes.
KINDS = ("chat", "embedding")
EMBEDDING_PROVIDERS = ("openai", "gemini", "openai-compatible")  # those with an embeddings API


class CatalogError(ValueError):
    """The catalog file is unreadable or an entry is malformed; the process refuses to start."""


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    provider: str
    upstream_model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    context_tokens: int
    max_output_tokens: int
    # Optional per-model endpoint (any OpenAI-compatible server); else the provider's env vars.
    base_url: str | None = None
    api_key_env: str | None = None
    kind: str = "chat"  # one of KINDS
    # An openai-compatible server that also speaks OpenAI's Responses API (/v1/responses):
    # Responses clients reach it natively ("openai" models always do).
    responses_api: bool = False


class Catalog:
    """Models in file order, which is the order every listing shows them in."""

    def __init__(self, models: list[Model]) -> None:
        self._models = {m.id: m for m in models}
        if len(self._models) != len(models):
            raise CatalogError("catalog lists a model id twice")

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def get(self, model_id: str) -> Model | None:
        return self._models.get(model_id)

    @property
    def ids(self) -> list[str]:
        return list(self._models)

    @property
    def models(self) -> list[Model]:
        return list(self._models.values())


def _price(entry: dict[str, object], field: str) -> Decimal:
    try:
        price = Decimal(str(entry[field]))
    except (KeyError, InvalidOperation) as exc:
        raise CatalogError(f"model {entry.get('id')!r}: {field} missing or not a number") from exc
    if not price.is_finite() or price < 0:
        raise CatalogError(f"model {entry.get('id')!r}: {field} must be >= 0")
    return price


def _model(entry: dict[str, object]) -> Model:
    provider = str(entry.get("provider"))
    if provider not in PROVIDERS:
        raise CatalogError(
            f"model {entry.get('id')!r}: provider must be one of {', '.join(PROVIDERS)}"
        )
    if provider == "openai-compatible" and not entry.get("base_url"):
        raise CatalogError(f"model {entry.get('id')!r}: an openai-compatible model needs base_url")
    kind = str(entry.get("kind", "chat"))
    if kind not in KINDS or (kind == "embedding" and provider not in EMBEDDING_PROVIDERS):
        raise CatalogError(
            f"model {entry.get('id')!r}: kind must be chat, or embedding for a provider with "
            f"an embeddings API ({', '.join(EMBEDDING_PROVIDERS)})"
        )
    responses_api = entry.get("responses_api", False)
    if not isinstance(responses_api, bool):
        raise CatalogError(f"model {entry.get('id')!r}: responses_api must be true or false")
    try:
        return Model(
            id=str(entry["id"]),
            provider=provider,
            upstream_model=str(entry.get("upstream_model", entry["id"])),
            input_usd_per_mtok=_price(entry, "input_usd_per_mtok"),
            output_usd_per_mtok=_price(entry, "output_usd_per_mtok"),
            context_tokens=int(str(entry.get("context_tokens", 128_000))),
            max_output_tokens=int(str(entry.get("max_output_tokens", 8_192))),
            base_url=_optional(entry, "base_url"),
            api_key_env=_optional(entry, "api_key_env"),
            kind=kind,
            responses_api=responses_api,
        )
    except (KeyError, ValueError) as exc:
        raise CatalogError(f"malformed catalog entry {entry!r}: {exc}") from exc


def _optional(entry: dict[str, object], field: str) -> str | None:
    value = entry.get(field)
    return None if value in (None, "") else str(value)


def load(path: Path | None = None) -> Catalog:
    source = path or SHIPPED_CATALOG
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"cannot read catalog {source}: {exc}") from exc
    entries = data.get("models")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CatalogError(f"catalog {source}: expected [[models]] tables")
    if not entries:
        raise CatalogError(f"catalog {source} lists no models")
    return Catalog([_model(entry) for entry in entries])
