"""The shapes of the three configuration files. Unknown keys are errors: a typo must not
silently switch a setting off."""

from __future__ import annotations

from datetime import timezone as _tz
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dwh.config.secrets import SecretRef
from dwh.cron import CronError
from dwh.cron import parse as parse_cron

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"an IANA timezone such as Europe/Moscow, found {value!r}") from exc
    return value


def _check_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"an http:// or https:// URL, found {value!r}")
    return value.rstrip("/")


# -- sources.yaml ----------------------------------------------------------------------------
class SourceBase(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    enabled: bool = True
    timeout_seconds: float = Field(60.0, gt=0)

    _check_url = field_validator("base_url", "portal_url", "web_client_url", check_fields=False)(
        _check_http_url
    )


class AmoCRMAuth(Strict):
    long_lived_token: SecretRef | None = None
    client_id: SecretRef | None = None
    client_secret: SecretRef | None = None
    redirect_uri: str | None = None
    refresh_token: SecretRef | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> AmoCRMAuth:
        oauth = [self.client_id, self.client_secret, self.redirect_uri, self.refresh_token]
        if self.long_lived_token is not None:
            if any(v is not None for v in oauth):
                raise ValueError("either long_lived_token or the OAuth keys, not both")
        elif any(v is None for v in oauth):
            raise ValueError(
                "long_lived_token, or all of client_id, client_secret, redirect_uri, refresh_token"
            )
        return self


class AmoCRMSource(SourceBase):
    type: Literal["amocrm"]
    base_url: str
    auth: AmoCRMAuth
    requests_per_second: float = Field(7.0, gt=0, le=7.0)


class Bitrix24Source(SourceBase):
    type: Literal["bitrix24"]
    webhook_url: SecretRef
    portal_url: str
    burst: int = Field(50, ge=1, le=250)
    requests_per_second: float = Field(2.0, gt=0, le=5.0)
    company_inn_field: str | None = None  # a UF_CRM_* field of the company, where requisites are not used


class OneCSource(SourceBase):
    type: Literal["onec"]
    base_url: str
    username: SecretRef
    password: SecretRef
    timezone: str = "Europe/Moscow"
    page_size: int = Field(1000, ge=1, le=100_000)
    web_client_url: str | None = None  # e.g. http://erp/trade/ru_RU: links open the deal there

    _tz = field_validator("timezone")(_check_timezone)


class MegaplanAuth(Strict):
    app_token: SecretRef | None = None
    username: SecretRef | None = None
    password: SecretRef | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> MegaplanAuth:
        if (self.app_token is None) == (self.username is None or self.password is None):
            raise ValueError("either app_token, or username and password")
        return self


class MegaplanSource(SourceBase):
    type: Literal["megaplan"]
    base_url: str
    auth: MegaplanAuth


class CreatioSource(SourceBase):
    type: Literal["creatio"]
    base_url: str
    username: SecretRef | None = None
    password: SecretRef | None = None
    client_id: SecretRef | None = None
    client_secret: SecretRef | None = None
    identity_url: str | None = None


class RosBiznesSoftSource(SourceBase):
    type: Literal["rosbiznessoft"]
    base_url: str
    username: SecretRef
    password: SecretRef
    objects: dict[str, str] = Field(default_factory=dict)  # meaning -> the installation's object name
    fields: dict[str, str] = Field(default_factory=dict)  # meaning -> the installation's field name


FILE_COLUMNS = (
    "deal_id", "pipeline", "stage", "manager", "amount", "currency", "created_at", "closed_at",
    "status", "loss_reason", "comment", "customer_name", "customer_inn",
)  # fmt: skip


class FileSource(SourceBase):
    type: Literal["file"]
    path: str
    encoding: Literal["utf-8", "cp1251", "utf-8-sig"] = "utf-8"
    delimiter: Literal[";", ",", "\t"] | None = None
    columns: dict[str, str]
    history_path: str | None = None

    @field_validator("columns")
    @classmethod
    def _known_meanings(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns) - set(FILE_COLUMNS))
        if unknown:
            raise ValueError(f"column meanings among {', '.join(FILE_COLUMNS)}, found {', '.join(unknown)}")
        if "deal_id" not in columns:
            raise ValueError("a deal_id column, found none")
        return columns


Source = Annotated[
    AmoCRMSource
    | Bitrix24Source
    | OneCSource
    | MegaplanSource
    | CreatioSource
    | RosBiznesSoftSource
    | FileSource,
    Field(discriminator="type"),
]


class SourcesConfig(Strict):
    sources: list[Source]

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[Source]) -> list[Source]:
        seen: set[str] = set()
        for s in sources:
            if s.name in seen:
                raise ValueError(f"unique connection names, found {s.name!r} twice")
            seen.add(s.name)
        return sources

    def by_type(self, source_type: str) -> list[Source]:
        return [s for s in self.sources if s.type == source_type and s.enabled]

    def get(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)


# -- funnel.yaml -----------------------------------------------------------------------------
class CanonicalStage(Strict):
    code: Annotated[str, Field(pattern=NAME_PATTERN)]
    name: str
    target_conversion: float | None = Field(None, ge=0, le=1)
    max_days: float | None = Field(None, gt=0)


class LossReason(Strict):
    code: Annotated[str, Field(pattern=NAME_PATTERN)]
    name: str
    reactivate_after_days: int | None = Field(None, gt=0)
    needs_review: bool = False


class Rules(Strict):
    lost_too_fast_minutes: float = Field(30, ge=0)
    comment_min_chars: int = Field(10, ge=0)


class Person(Strict):
    name: str
    email: str | None = None
    ids: list[str] = Field(default_factory=list)  # "<connection>:<user id>"

    @field_validator("ids")
    @classmethod
    def _qualified(cls, ids: list[str]) -> list[str]:
        for i in ids:
            if ":" not in i:
                raise ValueError(f"ids written as <connection>:<user id>, found {i!r}")
        return ids


class SourceMapping(Strict):
    """How one connection's stages and reasons map onto the company's.

    Keys of ``stages`` are a source stage's name, or ``"<pipeline name> / <stage name>"``
    where a name means different things in different pipelines (the qualified key wins).
    """

    stages: dict[str, str] = Field(default_factory=dict)
    conditional_refusal_stage: str | None = None
    loss_reasons: dict[str, str] = Field(default_factory=dict)
    loss_reason_field: str | None = None  # Bitrix24: the enumeration UF_CRM_* field
    loss_reason_stages: bool = False  # Bitrix24: failure stages other than LOSE/APOLOGY name the reason
    comment_field: str | None = None  # where the loss comment lives, if not the source's default


class FunnelConfig(Strict):
    timezone: str = "Europe/Moscow"
    base_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "RUB"
    stages: list[CanonicalStage] = Field(min_length=2)
    loss_reasons: list[LossReason] = Field(min_length=1)
    unmapped_reason: str = "other"
    rules: Rules = Rules()
    people: list[Person] = Field(default_factory=list)
    sources: dict[str, SourceMapping] = Field(default_factory=dict)

    _tz = field_validator("timezone")(_check_timezone)

    @model_validator(mode="after")
    def _codes_resolve(self) -> FunnelConfig:
        stage_codes = [s.code for s in self.stages]
        reason_codes = [r.code for r in self.loss_reasons]
        for kind, codes in (("stage", stage_codes), ("loss reason", reason_codes)):
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            if dupes:
                raise ValueError(f"unique {kind} codes, found {', '.join(dupes)} more than once")
        if self.unmapped_reason not in reason_codes:
            raise ValueError(f"unmapped_reason {self.unmapped_reason!r} to be one of loss_reasons")
        for source, mapping in self.sources.items():
            for key, code in mapping.stages.items():
                if code not in stage_codes:
                    raise ValueError(
                        f"sources.{source}.stages[{key!r}]: expected a canonical stage among "
                        f"{', '.join(stage_codes)}, found {code!r}"
                    )
            for key, code in mapping.loss_reasons.items():
                if code not in reason_codes:
                    raise ValueError(
                        f"sources.{source}.loss_reasons[{key!r}]: expected a loss reason among "
                        f"{', '.join(reason_codes)}, found {code!r}"
                    )
        return self

    @property
    def tzinfo(self) -> _tz | ZoneInfo:
        return ZoneInfo(self.timezone)


# -- alerts.yaml -----------------------------------------------------------------------------
class EmailChannel(Strict):
    smtp_host: str
    smtp_port: int = Field(587, gt=0, lt=65536)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: SecretRef | None = None
    password: SecretRef | None = None
    sender: str
    timeout_seconds: float = 30
    ca_file: str | None = None  # a private CA for the SMTP server's certificate


class TelegramChannel(Strict):
    bot_token: SecretRef
    api_base_url: str = "https://api.telegram.org"

    _url = field_validator("api_base_url")(_check_http_url)


class Channels(Strict):
    email: EmailChannel | None = None
    telegram: TelegramChannel | None = None


ALERT_KINDS = ("lost_deal_issues_digest", "weekly_funnel_report", "run_failures", "failed_checks")


class Recipient(Strict):
    email: list[str] = Field(default_factory=list)
    telegram_chat_ids: list[str] = Field(default_factory=list)
    receives: list[
        Literal["lost_deal_issues_digest", "weekly_funnel_report", "run_failures", "failed_checks"]
    ]


class AlertsConfig(Strict):
    channels: Channels = Channels()
    recipients: dict[str, Recipient] = Field(default_factory=dict)
    schedule: dict[Literal["lost_deal_issues_digest", "weekly_funnel_report"], str] = Field(
        default_factory=dict
    )
    dagster_base_url: str = "http://127.0.0.1:3000"

    @model_validator(mode="after")
    def _channels_exist(self) -> AlertsConfig:
        for name, r in self.recipients.items():
            if r.email and self.channels.email is None:
                raise ValueError(f"recipients.{name}.email needs channels.email to be configured")
            if r.telegram_chat_ids and self.channels.telegram is None:
                raise ValueError(
                    f"recipients.{name}.telegram_chat_ids needs channels.telegram to be configured"
                )
        for kind, cron in self.schedule.items():
            try:
                parse_cron(cron)
            except CronError as exc:
                raise ValueError(
                    f"schedule.{kind}: a five-field cron expression, found {cron!r} ({exc})"
                ) from None
        return self


class Config(Strict):
    sources: SourcesConfig
    funnel: FunnelConfig
    alerts: AlertsConfig
