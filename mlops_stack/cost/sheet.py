"""The price sheets: one TOML file per cloud in prices/, kept as data so a price can be checked against its
page and replaced without touching code."""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PRICES_DIR = Path(__file__).parent / "prices"


@dataclass(frozen=True)
class Price:
    key: str
    usd: float | None  # None: not found on the day it was read; lines using it are printed as unpriced
    unit: str
    url: str
    read: str  # the date the page was read
    note: str = ""


@dataclass(frozen=True)
class PriceSheet:
    cloud: str
    region: str
    prices: Mapping[str, Price]
    billable: Mapping[str, tuple[str, ...]]  # resource type -> the price keys it draws on
    free: Mapping[str, str]  # resource type -> why it costs nothing by itself

    def covers(self, resource_type: str) -> bool:
        return resource_type in self.billable or resource_type in self.free


def load_sheet(cloud: str, directory: Path = PRICES_DIR) -> PriceSheet:
    path = directory / f"{cloud}.toml"
    data = tomllib.loads(path.read_text())
    prices = {
        key: Price(
            key=key,
            usd=entry.get("usd"),
            unit=entry["unit"],
            url=entry["url"],
            read=entry["read"],
            note=entry.get("note", ""),
        )
        for key, entry in data["prices"].items()
    }
    billable = {kind: tuple(keys) for kind, keys in data["billable"].items()}
    return PriceSheet(data["cloud"], data["region"], prices, billable, dict(data["free"]))
