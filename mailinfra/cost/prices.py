"""The pinned price tables (AWS, ESP plans): typed, validated at load, every price with its source.

`--prices FILE` replaces the AWS table with a file of the same shape; a mistake in it is one line naming the
file and the key, what was there and what was expected.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mailinfra.errors import ConfigError, ConfigErrors, Described

PRICES_DIR = Path(__file__).parent / "prices"
AWS_PRICES = PRICES_DIR / "aws-2026-12-02.yaml"
ESP_PRICES = PRICES_DIR / "esp-2026-12-02.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_Model = TypeVar("_Model", bound=_Strict)


class Price(_Strict):
    usd: float = Field(ge=0)
    source: str = Field(min_length=1)
    # A monthly allowance in the price's unit that is not billed (SNS/SQS: the first million).
    free: float = Field(default=0, ge=0)


class Tier(_Strict):
    up_to_gb: float | None = Field(default=None, gt=0)  # None: every GB above the previous tier
    usd: float = Field(ge=0)


class TieredPrice(_Strict):
    free_gb: float = Field(default=0, ge=0)
    tiers: list[Tier] = Field(min_length=1)
    source: str = Field(min_length=1)


class RegionPrices(_Strict):
    ec2_hour: dict[str, Price] = Field(min_length=1)
    ebs_gp3_gb_month: Price
    transfer_out_gb: TieredPrice
    s3_gb_month: Price
    ssm_standard_parameter_month: Price
    sns_publish_per_million: Price
    sqs_requests_per_million: Price
    ses_per_1000: Price
    ses_attachment_gb: Price


class GlobalPrices(_Strict):
    public_ipv4_hour: Price
    route53_zone_month: Price
    route53_queries_per_million: Price


class AwsPrices(_Strict):
    date: dt.date
    currency: str = "USD"
    hours_per_month: float = Field(default=730, gt=0)
    sources: dict[str, str] = {}  # the anchors the prices quote; not read otherwise
    global_: GlobalPrices = Field(alias="global")
    regions: dict[str, RegionPrices] = Field(min_length=1)
    path: str = ""  # where the table was read from (set by the loader, shown in every source)

    def region(self, name: str, where: str, key: str = "aws:region") -> RegionPrices:
        """The prices of one region; an unknown region is the one-line error the house form asks for."""
        if name not in self.regions:
            raise ConfigErrors([ConfigError(where, key, name,
                                            f"a region priced in {self.path}: {', '.join(sorted(self.regions))} "
                                            "(or --prices FILE with that region)")])
        return self.regions[name]


class OverageBand(_Strict):
    """From this many messages sent in the month on, each 1,000 more cost `per_1000` (a vendor's volume tier)."""

    from_messages: int = Field(ge=0)
    per_1000: float = Field(ge=0)


class EspPlan(_Strict):
    vendor: str
    plan: str
    base_usd: float = Field(ge=0)
    included: int = Field(ge=0)
    # Flat overage above `included`; `overage_bands` (ascending) replaces it where the vendor tiers its overage.
    overage_per_1000: float = Field(ge=0)
    overage_bands: list[OverageBand] = []
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _bands_ascend_from_included(self) -> EspPlan:
        starts = [band.from_messages for band in self.overage_bands]
        if starts and (starts[0] != self.included or starts != sorted(set(starts))):
            raise ValueError(f"overage_bands must start at included ({self.included}) and ascend, got {starts}")
        return self

    def monthly_usd(self, messages: float) -> float:
        if not self.overage_bands:
            return self.base_usd + max(0.0, messages - self.included) / 1000 * self.overage_per_1000
        total = self.base_usd
        ends = [band.from_messages for band in self.overage_bands[1:]] + [float("inf")]
        for band, end in zip(self.overage_bands, ends, strict=True):
            total += max(0.0, min(messages, end) - band.from_messages) / 1000 * band.per_1000
        return total

    def kinks(self) -> list[float]:
        """Volumes where the monthly price changes slope: the included allowance and every band start."""
        return sorted({float(self.included), *(float(band.from_messages) for band in self.overage_bands)})


class EspPrices(_Strict):
    date: dt.date
    currency: str = "USD"
    plans: dict[str, EspPlan] = Field(min_length=1)


def load_aws_prices(path: Path = AWS_PRICES) -> AwsPrices:
    return _validate(path, AwsPrices, {"path": display_path(path)})


def load_esp_prices(path: Path = ESP_PRICES) -> EspPrices:
    return _validate(path, EspPrices, {})


def _validate(path: Path, model: type[_Model], extra: dict[str, Any]) -> _Model:
    """Validate or raise every problem as one line: `FILE: key.path: received X, expected Y`."""
    try:
        return model.model_validate({**_read(path), **extra})
    except ValidationError as exc:
        raise ConfigErrors([_line(path, err) for err in exc.errors()]) from None


def _read(path: Path) -> dict[str, Any]:
    where = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigErrors([ConfigError(where, "", f"an unreadable file ({exc.__class__.__name__})",
                                        "a YAML price table")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigErrors([ConfigError(f"{where}{line}", "", "text that is not YAML",
                                        "a YAML price table (see mailinfra/cost/prices/)")]) from None
    if not isinstance(data, dict):
        raise ConfigErrors([ConfigError(where, "", type(data).__name__, "a YAML mapping with date and regions")])
    return data


def _line(path: Path, err: Any) -> ConfigError:
    key = ".".join(str(part) for part in err["loc"])
    given = err.get("input")
    if err["type"] == "missing":
        return ConfigError(display_path(path), key, Described("nothing"),
                           "a value (see mailinfra/cost/prices/aws-*.yaml)")
    if err["type"] == "extra_forbidden":
        return ConfigError(display_path(path), key, given, "no such key (a typo?)")
    return ConfigError(display_path(path), key, given, err["msg"].removeprefix("Input should be ").lower())


def display_path(path: Path) -> str:
    """A pinned table by its place in the repository (the same in every checkout); any other file as given."""
    if path.resolve().parent == PRICES_DIR.resolve():
        return f"mailinfra/cost/prices/{path.name}"
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
