"""The model catalog: ids, providers, upstream names and price books, loaded once from TOML."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from bytespike.billing import pricebook
from bytespike.billing.pricebook import PriceBook

SHIPPED_CATALOG = Path(__file__).with_name("catalog.toml")
PROVIDERS = ("openai", "anthropic", "gemini", "openai-compatible", "mock")
# What a model does: "chat" models answer the chat routes, "embedding" models the embedding
# routes (/v1/embeddings, Gemini's embedContent); each kind is refused on the other's routes.
KINDS = ("chat", "embedding")
EMBEDDING_PROVIDERS = ("openai", "gemini", "openai-compatible")  # those with an embeddings API


class CatalogError(ValueError):
    """The catalog file is unreadable or an entry is malformed; the process refuses to start."""


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream serving a model: a provider, its name for the model, how to reach it.
    Calls spread over a model's lowest-priority deployments by weight and fall back to the
    next on failure (upstream/deployments.py, proxy/fallback.py); see docs/catalog.md."""

    name: str  # unique within its model: on usage records and in the health report
    provider: str  # one of PROVIDERS
    upstream_model: str
    base_url: str | None = None  # else the provider's env var (upstream/registry.py)
    api_key_env: str | None = None  # the name of the variable holding its key
    weight: int = 1  # its share of calls among deployments of its priority
    priority: int = 1  # lower is tried first; a higher one only when those failed
    responses_api: bool = False  # see Model.responses_api


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    provider: str
    upstream_model: str
    prices: PriceBook  # every token class, tier and price period (billing/pricebook.py)
    context_tokens: int
    max_output_tokens: int
    # Optional per-model endpoint (any OpenAI-compatible server); else the provider's env vars.
    base_url: str | None = None
    api_key_env: str | None = None
    kind: str = "chat"  # one of KINDS
    # An openai-compatible server that also speaks OpenAI's Responses API (/v1/responses):
    # Responses clients reach it natively ("openai" models always do).
    responses_api: bool = False
    # Every upstream serving it (the fields above are its first by priority's). A Model
    # built without any is served by those fields, as one deployment.
    deployments: tuple[Deployment, ...] = ()

    def __post_init__(self) -> None:
        if not self.deployments:
            own = Deployment(
                name=self.provider,
                provider=self.provider,
                upstream_model=self.upstream_model,
                base_url=self.base_url,
                api_key_env=self.api_key_env,
                responses_api=self.responses_api,
            )
            object.__setattr__(self, "deployments", (own,))

    def on(self, deployment: Deployment) -> Model:
        """This model as `deployment` serves it: its provider, upstream name and endpoint."""
        if self.deployments == (deployment,):
            return self  # served by one deployment: the model's fields are that one's
        return replace(
            self,
            provider=deployment.provider,
            upstream_model=deployment.upstream_model,
            base_url=deployment.base_url,
            api_key_env=deployment.api_key_env,
            responses_api=deployment.responses_api,
            deployments=(deployment,),
        )


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


def _prices(entry: dict[str, object]) -> PriceBook:
    try:
        return pricebook.parse(entry, str(entry.get("id")))
    except pricebook.PriceBookError as exc:
        raise CatalogError(f"model {entry.get('id')!r}: {exc}") from exc


def _model(entry: dict[str, object]) -> Model:
    kind = str(entry.get("kind", "chat"))
    if kind not in KINDS:
        raise CatalogError(f"model {entry.get('id')!r}: kind must be chat or embedding")
    deployments = _deployments(entry, kind)
    first = min(deployments, key=lambda d: d.priority)  # the earliest listed of the lowest
    prices = _prices(entry)
    try:
        return Model(
            id=str(entry["id"]),
            provider=first.provider,
            upstream_model=first.upstream_model,
            prices=prices,
            context_tokens=int(str(entry.get("context_tokens", 128_000))),
            max_output_tokens=int(str(entry.get("max_output_tokens", 8_192))),
            base_url=first.base_url,
            api_key_env=first.api_key_env,
            kind=kind,
            responses_api=first.responses_api,
            deployments=deployments,
        )
    except (KeyError, ValueError) as exc:
        raise CatalogError(f"malformed catalog entry {entry!r}: {exc}") from exc


def _optional(entry: dict[str, object], field: str) -> str | None:
    value = entry.get(field)
    return None if value in (None, "") else str(value)


# What a `[[models.deployments]]` table may set; the entry's own `provider`, `upstream_model`,
# `base_url`, `api_key_env` and `responses_api` are the defaults of its deployments.
_DEPLOYMENT_FIELDS = (
    "name", "provider", "upstream_model", "base_url", "api_key_env", "weight", "priority",
    "responses_api",
)  # fmt: skip


def _deployments(entry: dict[str, object], kind: str) -> tuple[Deployment, ...]:
    """The entry's deployments: its `[[models.deployments]]` tables, or, without any, the
    entry itself as its one deployment (the catalog's form before deployments)."""
    listed = entry.get("deployments", [{}])
    if not isinstance(listed, list) or not listed or not all(isinstance(d, dict) for d in listed):
        raise CatalogError(f"model {entry.get('id')!r}: deployments must be [[models.deployments]]")
    found: list[Deployment] = []
    for i, table in enumerate(listed):
        where = f"model {entry.get('id')!r}"
        if "deployments" in entry:
            where += f", deployments[{i}]"
        found.append(_deployment(entry, table, kind, where, taken={d.name for d in found}))
    return tuple(found)


def _deployment(
    entry: dict[str, object], table: dict[str, object], kind: str, where: str, taken: set[str]
) -> Deployment:
    unknown = sorted(set(table) - set(_DEPLOYMENT_FIELDS))
    if unknown:
        raise CatalogError(f"{where}: unknown deployment field {unknown[0]!r}")
    merged = {**entry, **table}
    provider = str(merged.get("provider"))
    if provider not in PROVIDERS:
        raise CatalogError(f"{where}: provider must be one of {', '.join(PROVIDERS)}")
    if provider == "openai-compatible" and not merged.get("base_url"):
        raise CatalogError(f"{where}: an openai-compatible deployment needs base_url")
    if kind == "embedding" and provider not in EMBEDDING_PROVIDERS:
        raise CatalogError(
            f"{where}: an embedding model needs a provider with an embeddings API "
            f"({', '.join(EMBEDDING_PROVIDERS)})"
        )
    responses_api = merged.get("responses_api", False)
    if not isinstance(responses_api, bool):
        raise CatalogError(f"{where}: responses_api must be true or false")
    name = str(table.get("name") or _free_name(provider, taken))
    if name in taken:
        raise CatalogError(f"{where}: deployment name {name!r} is used twice")
    return Deployment(
        name=name,
        provider=provider,
        upstream_model=str(merged.get("upstream_model") or entry.get("id")),
        base_url=_optional(merged, "base_url"),
        api_key_env=_optional(merged, "api_key_env"),
        weight=_whole(table, "weight", 1, least=1, where=where),
        priority=_whole(table, "priority", 1, least=0, where=where),
        responses_api=responses_api,
    )


def _free_name(provider: str, taken: set[str]) -> str:
    """An unnamed deployment's name: its provider's, numbered from 2 if that is taken."""
    name, n = provider, 1
    while name in taken:
        n += 1
        name = f"{provider}-{n}"
    return name


def _whole(table: dict[str, object], field: str, default: int, *, least: int, where: str) -> int:
    value = table.get(field, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise CatalogError(f"{where}: {field} must be a whole number >= {least}")
    return value


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
