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


def _check_optional_http_url(value: str | None) -> str | None:
    return None if value is None else _check_http_url(value)


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
    """An application's token (static Bearer), or an employee's login for the password grant."""

    app_token: SecretRef | None = None
    username: SecretRef | None = None
    password: SecretRef | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> MegaplanAuth:
        given = [k for k in ("app_token", "username", "password") if getattr(self, k) is not None]
        if self.app_token is not None and len(given) > 1:
            raise ValueError(f"either app_token, or username and password, found {' and '.join(given)}")
        if self.app_token is None and len(given) < 2:
            raise ValueError(
                f"app_token, or both username and password, found {' and '.join(given) or 'none of them'}"
            )
        return self


class MegaplanSource(SourceBase):
    type: Literal["megaplan"]
    base_url: str  # the account's address (https://firma.megaplan.ru) or a boxed install's host
    auth: MegaplanAuth
    # Megaplan publishes no rate limit: a modest pace by default
    requests_per_second: float = Field(5.0, gt=0, le=50.0)
    page_size: int = Field(100, ge=1, le=100)  # 100 is the API's documented default page
    # the custom deal fields to land (API names or titles); default: every one /deal/extraFields lists
    custom_fields: list[str] | None = None

    @field_validator("base_url")
    @classmethod
    def _account_root(cls, value: str) -> str:
        if value.rstrip("/").endswith("/api/v3"):
            raise ValueError(
                f"the account's address without /api/v3 (https://firma.megaplan.ru), found {value!r}"
            )
        return value


class CreatioSource(SourceBase):
    """A Creatio site over OData 4: cookie login (username and password) or OAuth 2.0 client
    credentials from the site's Identity Service (client_id, client_secret, identity_url)."""

    type: Literal["creatio"]
    base_url: str  # the site's root, e.g. https://firma.creatio.com
    odata_root: Literal["/0/odata", "/odata"] = "/0/odata"  # .NET Framework sites; /odata on .NET Core
    username: SecretRef | None = None
    password: SecretRef | None = None
    client_id: SecretRef | None = None
    client_secret: SecretRef | None = None
    # the Identity Service's root: tokens come from <identity_url>/connect/token
    identity_url: str | None = None
    page_size: int = Field(1000, ge=1, le=20_000)  # rows per request; at most the site's MaxEntityRowCount
    requests_per_second: float = Field(5.0, gt=0, le=50.0)  # Creatio publishes no limit: a modest pace

    _check_identity_url = field_validator("identity_url")(_check_optional_http_url)

    @model_validator(mode="after")
    def _one_scheme(self) -> CreatioSource:
        cookie = {"username": self.username, "password": self.password}
        oauth = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "identity_url": self.identity_url,
        }
        cookie_keys = [k for k, v in cookie.items() if v is not None]
        oauth_keys = [k for k, v in oauth.items() if v is not None]
        if cookie_keys and oauth_keys:
            raise ValueError(
                "either username and password (cookie login) or client_id, client_secret and identity_url "
                f"(OAuth client credentials), not both: found {', '.join(cookie_keys + oauth_keys)}"
            )
        if cookie_keys and len(cookie_keys) < len(cookie):
            missing = [k for k in cookie if k not in cookie_keys]
            raise ValueError(f"username and password together for the cookie login, found no {missing[0]}")
        if oauth_keys and len(oauth_keys) < len(oauth):
            missing = [k for k in oauth if k not in oauth_keys]
            raise ValueError(
                f"client_id, client_secret and identity_url together for OAuth client credentials, "
                f"found no {', '.join(missing)}"
            )
        if not cookie_keys and not oauth_keys:
            raise ValueError(
                "username and password (cookie login), or client_id, client_secret and identity_url"
            )
        return self


# RosBiznesSoft CRM: every object and field name is the installation's own (its «Конфигурация»).
# meaning -> the name used when sources.yaml does not say otherwise; "" in sources.yaml says the
# installation has no such object or field.
RBS_OBJECTS: dict[str, str] = {
    "deals": "documents.deals",
    "pipelines": "references.deal_types",
    "stages": "references.deal_stages",
    "loss_reasons": "references.deal_loss_reasons",
    "stage_history": "documents.deal_stage_history",
    "comments": "documents.deal_comments",
    "users": "references.users",
    "companies": "references.companies",
    "company_details": "references.companies_details",
}
RBS_REQUIRED_OBJECTS = ("deals", "stages", "users", "companies")
RBS_FIELDS: dict[str, str] = {
    "id": "id",
    "visible": "visible",  # 0: deleted (moved to the bin); the record stays readable
    "deal_number": "number",
    "deal_name": "name",
    "deal_created": "date",
    "deal_modified": "date_modify",
    "deal_closed": "date_close",
    "deal_pipeline": "type",
    "deal_stage": "status",
    "deal_responsible": "responsible",
    "deal_company": "owner",
    "deal_amount": "sum",
    "deal_currency": "currency",
    "deal_loss_reason": "reason",
    "deal_comment": "description",
    "pipeline_name": "name",
    "stage_name": "name",
    "stage_pipeline": "owner",
    "stage_sort": "sort",
    "stage_result": "result",
    "loss_reason_name": "name",
    "history_deal": "owner",
    "history_stage": "status",
    "history_date": "date",
    "history_user": "responsible",
    "comment_deal": "owner",
    "comment_text": "text",
    "comment_date": "date",
    "comment_author": "author",
    "user_name": "name",
    "user_email": "email",
    "user_active": "active",
    "company_name": "name",
    "company_created": "date",
    "company_modified": "date_modify",
    "company_manager": "manager",
    "details_company": "owner",
    "details_name": "name",
    "details_inn": "inn",
    "details_modified": "date_modify",
}
RBS_REQUIRED_FIELDS = (
    "id", "deal_created", "deal_modified", "deal_stage", "deal_responsible", "stage_name", "stage_result",
    "history_deal", "history_stage", "history_date", "comment_deal", "comment_text", "comment_date",
    "user_name", "company_name", "details_company", "details_inn",
)  # fmt: skip
DealStatus = Literal["open", "won", "lost"]


def _rbs_names(
    kind: str, given: dict[str, str], known: dict[str, str], required: tuple[str, ...]
) -> dict[str, str]:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{kind} meanings among {', '.join(known)}, found {', '.join(unknown)}")
    blank = sorted(k for k in required if k in given and not given[k].strip())
    if blank:
        raise ValueError(
            f"a name for {', '.join(blank)} (the extractor cannot work without it), found an empty one"
        )
    return {k: v.strip() for k, v in given.items()}


class RosBiznesSoftSource(SourceBase):
    """A RosBiznesSoft CRM (RBS360) installation over its XML API (``<base_url>/api/xml/``).

    ``objects`` and ``fields`` name the installation's structures and fields by meaning; what
    is not given takes the name in ``RBS_OBJECTS`` / ``RBS_FIELDS``. ``stage_results`` reads
    the stage's result enumeration (its numeric values differ per installation)."""

    type: Literal["rosbiznessoft"]
    base_url: str  # the system's address: https://client.rbs360.ru or an own install's
    username: SecretRef
    password: SecretRef
    objects: dict[str, str] = Field(default_factory=dict)  # meaning -> the installation's object name
    fields: dict[str, str] = Field(default_factory=dict)  # meaning -> the installation's field name
    stage_results: dict[str, DealStatus] = Field(
        default_factory=lambda: {"1": "open", "2": "won", "3": "lost"}
    )
    timezone: str = "Europe/Moscow"  # its dates carry no zone
    page_size: int = Field(100, ge=1, le=1000)  # rows per list action (limit/number)
    # the API publishes no limit and serves requests one after another: a modest pace
    requests_per_second: float = Field(3.0, gt=0, le=20.0)

    _tz = field_validator("timezone")(_check_timezone)

    @field_validator("objects")
    @classmethod
    def _known_objects(cls, objects: dict[str, str]) -> dict[str, str]:
        return _rbs_names("object", objects, RBS_OBJECTS, RBS_REQUIRED_OBJECTS)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: dict[str, str]) -> dict[str, str]:
        return _rbs_names("field", fields, RBS_FIELDS, RBS_REQUIRED_FIELDS)

    @field_validator("base_url")
    @classmethod
    def _system_address(cls, value: str) -> str:
        if value.rstrip("/").endswith("/api/xml"):
            raise ValueError(
                f"the system's address without /api/xml (https://firma.rbs360.ru), found {value!r}"
            )
        return value

    def object_name(self, meaning: str) -> str:
        """The installation's structure for ``meaning`` ("" when it has none)."""
        return self.objects.get(meaning, RBS_OBJECTS[meaning])

    def field_name(self, meaning: str) -> str:
        """The installation's field for ``meaning`` ("" when it has none)."""
        return self.fields.get(meaning, RBS_FIELDS[meaning])


FILE_COLUMNS = (
    "deal_id", "deal_name", "pipeline", "stage", "manager", "amount", "currency", "created_at", "closed_at",
    "status", "loss_reason", "comment", "customer_name", "customer_inn",
)  # fmt: skip
FILE_HISTORY_COLUMNS = ("deal_id", "stage", "changed_at", "pipeline", "manager")
FILE_HISTORY_REQUIRED = ("deal_id", "stage", "changed_at")


def _column_map(columns: dict[str, str], known: tuple[str, ...], required: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(columns) - set(known))
    if unknown:
        raise ValueError(f"column meanings among {', '.join(known)}, found {', '.join(unknown)}")
    missing = [k for k in required if k not in columns]
    if missing:
        raise ValueError(f"a column for {', '.join(missing)}, found none")
    blank = sorted(k for k, v in columns.items() if not str(v).strip())
    if blank:
        raise ValueError(f"a column name for {', '.join(blank)}, found an empty one")
    names = [v.strip() for v in columns.values()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"one meaning per column, found {', '.join(map(repr, repeated))} mapped twice")
    return {k: v.strip() for k, v in columns.items()}


class FileSource(SourceBase):
    """CSV or XLSX exports of deals (any CRM, or a spreadsheet funnel) read from a folder (every
    new or changed file once) or one file. ``columns`` maps a meaning onto the export's column."""

    type: Literal["file"]
    path: str  # a folder or one file; relative to the configuration folder when not absolute
    # CSV only; auto: UTF-8 when the bytes are valid UTF-8, else cp1251; a UTF-8 BOM always means UTF-8
    encoding: Literal["auto", "utf-8", "cp1251", "utf-8-sig"] = "auto"
    delimiter: Literal[";", ",", "\t"] | None = None  # CSV only; None: found from the header
    columns: dict[str, str]  # meaning -> the export's column name
    history_path: str | None = None  # a folder or one file of stage changes (optional)
    history_columns: dict[str, str] = Field(default_factory=dict)
    sheet: str | None = None  # XLSX: the sheet to read (default: the first)
    timezone: str = "Europe/Moscow"  # the exports' dates carry no zone
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "RUB"  # when no currency column or an empty cell
    pipeline_name: str | None = None  # the pipeline of every deal when the export has no pipeline column
    # more words of the status column, on top of the built-in Russian and English ones
    status_values: dict[DealStatus, list[str]] = Field(default_factory=dict)

    _tz = field_validator("timezone")(_check_timezone)

    @field_validator("columns")
    @classmethod
    def _known_meanings(cls, columns: dict[str, str]) -> dict[str, str]:
        return _column_map(columns, FILE_COLUMNS, ("deal_id",))

    @field_validator("history_columns")
    @classmethod
    def _known_history_meanings(cls, columns: dict[str, str]) -> dict[str, str]:
        return _column_map(columns, FILE_HISTORY_COLUMNS, ()) if columns else columns

    @model_validator(mode="after")
    def _history_needs_columns(self) -> FileSource:
        if self.history_path is not None:
            missing = [k for k in FILE_HISTORY_REQUIRED if k not in self.history_columns]
            if missing:
                raise ValueError(
                    f"history_columns naming the history file's {', '.join(missing)} column(s) "
                    "when history_path is set, found none"
                )
        elif self.history_columns:
            raise ValueError("history_path for the history_columns given, found no history_path")
        return self


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
