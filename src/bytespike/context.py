"""What every use case needs, built once by the composition root (server or CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bytespike import catalog as catalog_module
from bytespike.catalog import Catalog
from bytespike.clock import Clock, SystemClock
from bytespike.db.engine import Database
from bytespike.settings import Settings


@dataclass
class Context:
    settings: Settings
    db: Database
    catalog: Catalog
    clock: Clock

    @property
    def hold_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.hold_ttl_seconds)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Context:
        return cls(
            settings=settings,
            db=Database(settings.database_url, pool_size=settings.db_pool_size),
            catalog=catalog_module.load(settings.catalog),
            clock=clock or SystemClock(),
        )
