"""The account payload's shape, for the OpenAPI document (views.py builds the JSON itself)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class User(BaseModel):
    id: int
    username: str
    email: str
    created_at: str
    tier: Literal["individual", "enterprise"]


class Balance(BaseModel):
    available_usd: float
    lifetime_topup_usd: float
    lifetime_spent_usd: float
    low_balance_threshold_usd: float
    low_balance_flagged: bool


class AllowedModel(BaseModel):
    id: str
    quota_used_usd: float
    quota_cap_usd: float | None


class Org(BaseModel):
    id: int
    name: str
    role: Literal["owner", "admin", "member"] | None


class Account(BaseModel):
    user: User
    balance: Balance
    allowed_models: list[AllowedModel]
    org: Org | None
