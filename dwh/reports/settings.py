"""The report settings a company may change, from the environment.

``DWH_EXPORT_DIR``               where ``loss_report_<date>.xlsx`` goes (default ``<data dir>/exports``)
``DWH_REPORT_LANGUAGE``          ``ru`` (default) or ``en``: headers, sheet names, the e-mail's words
``DWH_REPORT_MONTHS``            months of history in the Excel report (default 12)
``DWH_REPORT_CONVERSION_WEEKS``  weeks of deal creation behind the conversion table (default 12)
``DWH_REPORT_COMPARE_WEEKS``     previous weeks the week's losses are compared with (default 4)
``DWH_REPORT_AS_OF``             the reports' date, YYYY-MM-DD (default today in funnel.yaml's timezone),
                                 to rebuild a past report or to report on a world frozen in time
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from dwh.paths import data_dir

Language = Literal["ru", "en"]
LANGUAGES: tuple[Language, ...] = ("ru", "en")


class SettingsError(ValueError):
    """A report setting in the environment is wrong; ``str()`` names the variable."""


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number from {low} to {high}, found {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: expected a whole number from {low} to {high}, found {value}")
    return value


@dataclass(frozen=True)
class ReportSettings:
    language: Language = "ru"
    export_dir: Path = Path(".")
    months: int = 12
    conversion_weeks: int = 12
    compare_weeks: int = 4
    as_of: date | None = None

    @property
    def outbox_dir(self) -> Path:
        return data_dir() / "outbox"

    @classmethod
    def from_env(cls) -> ReportSettings:
        language = (os.environ.get("DWH_REPORT_LANGUAGE") or "ru").strip().lower()
        if language not in LANGUAGES:
            raise SettingsError(f"DWH_REPORT_LANGUAGE: expected ru or en, found {language!r}")
        export = os.environ.get("DWH_EXPORT_DIR", "").strip()
        as_of = os.environ.get("DWH_REPORT_AS_OF", "").strip()
        try:
            day = date.fromisoformat(as_of) if as_of else None
        except ValueError:
            raise SettingsError(f"DWH_REPORT_AS_OF: expected a date as YYYY-MM-DD, found {as_of!r}") from None
        return cls(
            language=language,  # type: ignore[arg-type]
            export_dir=Path(export).expanduser().resolve() if export else data_dir() / "exports",
            months=_int("DWH_REPORT_MONTHS", 12, 1, 120),
            conversion_weeks=_int("DWH_REPORT_CONVERSION_WEEKS", 12, 1, 104),
            compare_weeks=_int("DWH_REPORT_COMPARE_WEEKS", 4, 1, 52),
            as_of=day,
        )
