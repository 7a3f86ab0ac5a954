"""The shape of the demo company's systems: sources, pipelines with their stages, loss reasons.

Everything here is fixed by design except the 1C GUIDs, which come from the world's random
stream. ``Ladder`` is the generator's view of a pipeline: its process stages grouped by
canonical level (an unmapped stage belongs to the level of the next mapped stage).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sandbox.world.model import LossReason, Pipeline, Source, Stage, World

# The company-wide canonical funnel (codes of funnel.yaml), in order.
CANONICAL_STAGES = ["new", "contact", "proposal", "contract", "paid"]
CANONICAL_NAMES = {
    "new": "Новая заявка",
    "contact": "Первичный контакт",
    "proposal": "КП отправлено",
    "contract": "Договор",
    "paid": "Оплачено",
}
STAGE_TARGETS = {"new": 1.00, "contact": 0.80, "proposal": 0.80, "contract": 0.95}
STAGE_MAX_DAYS = {"new": 2, "contact": 5, "proposal": 10, "contract": 14}
LEVELS = CANONICAL_STAGES[:4]  # the process levels a deal moves through before "paid"

CANONICAL_REASONS: list[dict[str, object]] = [
    {"code": "no_budget", "name": "Нет бюджета", "reactivate_after_days": 60},
    {"code": "other_supplier", "name": "Есть другой поставщик", "needs_review": True},
    {"code": "high_price", "name": "Высокая цена"},
    {"code": "not_planned", "name": "Закупки не запланированы", "reactivate_after_days": 90},
    {"code": "not_fit", "name": "Товар не подходит под требования"},
    {"code": "not_interested", "name": "Не интересует"},
    {"code": "delivery_terms", "name": "Не устраивают условия поставки"},
    {"code": "other", "name": "Другое"},
]
REASON_CODES = [str(r["code"]) for r in CANONICAL_REASONS]
NEEDS_REVIEW = {str(r["code"]) for r in CANONICAL_REASONS if r.get("needs_review")}

COMMENT_MIN_CHARS = 10
LOST_TOO_FAST_MINUTES = 30

AMO, B24, ONEC = "amo_retail", "b24_wholesale", "erp"
MEGAPLAN, CREATIO, RBS, FILE = "megaplan_main", "creatio_b2b", "rbs", "legacy_excel"
SOURCE_SHARES = {AMO: 0.32, B24: 0.28, ONEC: 0.20, MEGAPLAN: 0.06, CREATIO: 0.06, RBS: 0.04, FILE: 0.04}
SYSTEMS = {
    AMO: "amocrm", B24: "bitrix24", ONEC: "onec", MEGAPLAN: "megaplan", CREATIO: "creatio",
    RBS: "rosbiznessoft", FILE: "file",
}  # fmt: skip

# Failure stages that name the reason (Bitrix24 tender stages, Megaplan negative states):
# (reason text, the demo mapping's code or None when it does not know it, the true reason).
_STAGE_REASONS = [
    ("Проиграли: цена", "high_price", "high_price"),
    ("Проиграли: конкурент", "other_supplier", "other_supplier"),
    ("Проиграли: нет бюджета", "no_budget", "no_budget"),
    ("Проиграли: отмена закупки", None, "tender_cancelled"),
    ("Отказ: дорого", "high_price", "high_price"),
    ("Отказ: нет бюджета", "no_budget", "no_budget"),
    ("Отказ: выбрали конкурента", "other_supplier", "other_supplier"),
    ("Не дозвонились 📵", None, "unreachable"),
]
STAGE_REASON_CANONICAL: dict[str, str | None] = {name: code for name, code, _ in _STAGE_REASONS}
STAGE_REASON_TRUE: dict[str, str] = {name: true for name, _, true in _STAGE_REASONS}

# Each source's own loss reasons: (id or None for a GUID, name, canonical code, true reason).
_REASONS: dict[str, list[tuple[str | None, str, str | None, str]]] = {
    AMO: [
        ("4203741", "Нет денег", "no_budget", "no_budget"),
        ("4203742", "Выбрали конкурента", "other_supplier", "other_supplier"),
        ("4203743", "Дорого", "high_price", "high_price"),
        ("4203744", "Закупка не планируется", "not_planned", "not_planned"),
        ("4203745", "Не подходит товар", "not_fit", "not_fit"),
        ("4203746", "Не интересно", "not_interested", "not_interested"),
        ("4203747", "Не устроили сроки доставки", "delivery_terms", "delivery_terms"),
        ("4203748", "Не выходит на связь", None, "unreachable"),
        ("4203749", "Пропала потребность", None, "need_gone"),
    ],
    B24: [
        ("79", "Нет бюджета", "no_budget", "no_budget"),
        ("80", "Есть другой поставщик", "other_supplier", "other_supplier"),
        ("81", "Высокая цена", "high_price", "high_price"),
        ("82", "Закупки не запланированы", "not_planned", "not_planned"),
        ("83", "Не подходит по ТЗ", "not_fit", "not_fit"),
        ("84", "Не интересует", "not_interested", "not_interested"),
        ("85", "Сроки поставки", "delivery_terms", "delivery_terms"),
        ("86", "Передумали", None, "need_gone"),
        ("87", "Другое", "other", "other"),
    ],
    ONEC: [
        (None, "Нет бюджета", "no_budget", "no_budget"),
        (None, "Выбран другой поставщик", "other_supplier", "other_supplier"),
        (None, "Высокая цена", "high_price", "high_price"),
        (None, "Закупка перенесена", "not_planned", "not_planned"),
        (None, "Не соответствует требованиям", "not_fit", "not_fit"),
        (None, "Нет интереса", "not_interested", "not_interested"),
        (None, "Не устраивают условия поставки", "delivery_terms", "delivery_terms"),
        (None, "Клиент не отвечает", None, "unreachable"),
    ],
    MEGAPLAN: [  # the values of the enumeration custom field "Причина отказа"
        ("9001", "Нет бюджета", "no_budget", "no_budget"),
        ("9002", "Дорого", "high_price", "high_price"),
        ("9003", "Выбрали другого поставщика", "other_supplier", "other_supplier"),
        ("9004", "Не актуально", "not_interested", "not_interested"),
        ("9005", "Сорвали сроки", "delivery_terms", "delivery_terms"),
        ("9006", "Пропал интерес", None, "need_gone"),
    ],
    CREATIO: [
        (None, "Нет бюджета", "no_budget", "no_budget"),
        (None, "Выбрали другого поставщика", "other_supplier", "other_supplier"),
        (None, "Высокая цена", "high_price", "high_price"),
        (None, "Закупка отложена", "not_planned", "not_planned"),
        (None, "Не подходит продукт", "not_fit", "not_fit"),
        (None, "Нет интереса", "not_interested", "not_interested"),
        (None, "Не выходит на связь", None, "unreachable"),
    ],
    RBS: [
        ("1", "Нет бюджета", "no_budget", "no_budget"),
        ("2", "Выбрали другого поставщика", "other_supplier", "other_supplier"),
        ("3", "Высокая цена", "high_price", "high_price"),
        ("4", "Закупка не запланирована", "not_planned", "not_planned"),
        ("5", "Не подходит по характеристикам", "not_fit", "not_fit"),
        ("6", "Не устроили сроки поставки", "delivery_terms", "delivery_terms"),
        ("7", "Пропал клиент", None, "unreachable"),
    ],
    FILE: [  # a file names a reason by its text: the id is the name
        ("Нет бюджета", "Нет бюджета", "no_budget", "no_budget"),
        ("Купили у конкурента", "Купили у конкурента", "other_supplier", "other_supplier"),
        ("Дорого", "Дорого", "high_price", "high_price"),
        ("Не актуально", "Не актуально", "not_interested", "not_interested"),
        ("Не подошли условия доставки", "Не подошли условия доставки", "delivery_terms", "delivery_terms"),
        ("Передумали", "Передумали", None, "need_gone"),
    ],
}
# true reason of each source reason, by (source, name)
REASON_TRUE: dict[tuple[str, str], str] = {(s, r[1]): r[3] for s, rows in _REASONS.items() for r in rows}

ONEC_STAGES = [  # PredefinedDataName, Description, canonical
    ("ПервичныйКонтакт", "Первичный контакт", "new"),
    ("КвалификацияКлиента", "Квалификация клиента", "contact"),
    ("ФормированиеПредложения", "Формирование предложения", "proposal"),
    ("Презентация", "Презентация", "proposal"),
    ("СогласованиеУсловий", "Согласование условий", "contract"),
    ("ПодготовкаКВыполнениюОбязательств", "Подготовка к выполнению обязательств", "contract"),
    ("ВыполнениеОбязательств", "Выполнение обязательств", "contract"),
]
ONEC_DEAL_KIND = "Типовая продажа"
UNSORTED_STAGE_NAME = "Неразобранное"
CONDITIONAL_REFUSAL_NAME = "Условный отказ"
# Megaplan: "Продажи" has one negative state per reason, "Проекты" one generic "Отказ" and
# the reason in the enumeration custom field (id, name, kind, canonical, reason named)
MEGAPLAN_PROGRAMS: dict[tuple[str, str], list[tuple[str, str, str, str | None, str | None]]] = {
    ("11", "Продажи"): [
        ("101", "Новая заявка", "process", "new", None),
        ("102", "Квалификация", "process", "contact", None),
        ("103", "КП отправлено", "process", "proposal", None),
        ("104", "Переговоры", "process", "contract", None),
        ("105", CONDITIONAL_REFUSAL_NAME, "conditional_refusal", None, None),
        ("106", "Сделка заключена", "won", None, None),
        ("107", "Отказ: дорого", "lost", None, "Отказ: дорого"),
        ("108", "Отказ: нет бюджета", "lost", None, "Отказ: нет бюджета"),
        ("109", "Отказ: выбрали конкурента", "lost", None, "Отказ: выбрали конкурента"),
        ("110", "Не дозвонились 📵", "lost", None, "Не дозвонились 📵"),
    ],
    ("12", "Проекты"): [
        ("201", "Новый проект", "process", "new", None),
        ("202", "Встреча", "process", "contact", None),
        ("203", "Расчёт", "process", None, None),  # left unmapped on purpose
        ("204", "Предложение", "process", "proposal", None),
        ("205", "Договор", "process", "contract", None),
        ("206", "Проект реализован", "won", None, None),
        ("207", "Отказ", "lost", None, None),
    ],
}
# Creatio: one stage list per site (name, kind, canonical); ids are GUIDs
CREATIO_PIPELINE = "Продажи"
CREATIO_STAGES = [
    ("Квалификация", "process", "new"),
    ("Презентация", "process", "contact"),
    ("КП отправлено", "process", "proposal"),
    ("Согласование договора", "process", "contract"),
    (CONDITIONAL_REFUSAL_NAME, "conditional_refusal", None),
    ("Закрыта успешно", "won", None),
    ("Закрыта и не реализована", "lost", None),
    ("Отклонена клиентом", "lost", None),
]
# RosBiznesSoft: deal types with their own stages (name, kind, canonical); numeric ids
RBS_PIPELINES = {
    "Продажи": [
        ("Новая заявка", "process", "new"),
        ("Выявление потребности", "process", "contact"),
        ("Коммерческое предложение", "process", "proposal"),
        ("Согласование договора", "process", "contract"),
        (CONDITIONAL_REFUSAL_NAME, "conditional_refusal", None),
        ("Успешно реализовано", "won", None),
        ("Закрыто и не реализовано", "lost", None),
    ],
    "Тендеры": [
        ("Подготовка заявки", "process", "new"),
        ("Анализ тендера", "process", "contact"),
        ("Проверка документации", "process", None),  # left unmapped on purpose
        ("Заявка подана", "process", "proposal"),
        ("Исполнение контракта", "process", "contract"),
        ("Выигран", "won", None),
        ("Проигран", "lost", None),
    ],
}
# the spreadsheet funnel a sales office exports: names are the ids
FILE_PIPELINE = "Воронка продаж"
FILE_STAGES = [
    ("Новая заявка", "process", "new"),
    ("Первый контакт", "process", "contact"),
    ("Коммерческое предложение", "process", "proposal"),
    ("Договор", "process", "contract"),
    (CONDITIONAL_REFUSAL_NAME, "conditional_refusal", None),
    ("Сделка успешна", "won", None),
    ("Сделка провалена", "lost", None),
]


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def build_sources() -> list[Source]:
    return [Source(name, system) for name, system in SYSTEMS.items()]  # type: ignore[arg-type]


def build_pipelines(rng: random.Random) -> list[Pipeline]:
    def amo_stage(sid: str, name: str, sort: int, canonical: str | None, kind: str = "process") -> Stage:
        return Stage(sid, name, kind, sort, canonical)  # type: ignore[arg-type]

    retail = Pipeline(
        "7670334",
        AMO,
        "Розница",
        [
            amo_stage("63384101", UNSORTED_STAGE_NAME, 10, "new"),
            amo_stage("63384102", "Первичный контакт", 20, "contact"),
            amo_stage("63384103", "Квалификация", 30, "contact"),
            amo_stage("63384104", "КП отправлено", 40, "proposal"),
            amo_stage("63384105", "Переговоры", 50, "contract"),
            amo_stage("63384106", "Согласование договора", 60, "contract"),
            amo_stage("63384107", CONDITIONAL_REFUSAL_NAME, 70, None, "conditional_refusal"),
            amo_stage("142", "Успешно реализовано", 10000, None, "won"),
            amo_stage("143", "Закрыто и не реализовано", 11000, None, "lost"),
        ],
        sort=1,
        is_main=True,
    )
    wholesale = Pipeline(
        "7670335",
        AMO,
        "Опт",
        [
            amo_stage("63384201", UNSORTED_STAGE_NAME, 10, "new"),
            amo_stage("63384202", "Переговоры", 20, "contact"),
            amo_stage("63384203", "Расчёт стоимости", 30, None),  # left unmapped on purpose
            amo_stage("63384204", "КП отправлено", 40, "proposal"),
            amo_stage("63384205", "Согласование договора", 50, "contract"),
            amo_stage("63384206", "Ожидание оплаты", 60, "contract"),
            amo_stage("142", "Успешно реализовано", 10000, None, "won"),
            amo_stage("143", "Закрыто и не реализовано", 11000, None, "lost"),
        ],
        sort=2,
    )
    general = Pipeline(
        "0",
        B24,
        "Общая",
        [
            Stage("NEW", "Новая заявка", "process", 10, "new"),
            Stage("PREPARATION", "Первичный контакт", "process", 20, "contact"),
            Stage("PREPAYMENT_INVOICE", "КП и счёт", "process", 30, "proposal"),
            Stage("EXECUTING", "Согласование договора", "process", 40, "contract"),
            Stage("WON", "Сделка успешна", "won", 60, None),
            Stage("LOSE", "Сделка провалена", "lost", 70, None),
            Stage("APOLOGY", "Анализ причины провала", "lost", 80, None),
        ],
        sort=100,
        is_main=True,
    )
    tenders = Pipeline(
        "1",
        B24,
        "Тендеры",
        [
            Stage("C1:NEW", "Новый тендер", "process", 10, "new"),
            Stage("C1:PREPARATION", "Подготовка заявки", "process", 20, "contact"),
            Stage("C1:UC_DOCS", "Сбор документов", "process", 30, None),  # left unmapped on purpose
            Stage("C1:PREPAYMENT_INVOICE", "Заявка подана", "process", 40, "proposal"),
            Stage("C1:EXECUTING", "Исполнение контракта", "process", 50, "contract"),
            Stage("C1:WON", "Тендер выигран", "won", 60, None),
            Stage("C1:LOSE", "Тендер проигран", "lost", 70, None),
            Stage("C1:LOSE_PRICE", "Проиграли: цена", "lost", 80, None, reason_name="Проиграли: цена"),
            Stage(
                "C1:LOSE_COMPETITOR",
                "Проиграли: конкурент",
                "lost",
                90,
                None,
                reason_name="Проиграли: конкурент",
            ),
            Stage(
                "C1:LOSE_BUDGET",
                "Проиграли: нет бюджета",
                "lost",
                100,
                None,
                reason_name="Проиграли: нет бюджета",
            ),
            Stage(
                "C1:LOSE_CANCELLED",
                "Проиграли: отмена закупки",
                "lost",
                110,
                None,
                reason_name="Проиграли: отмена закупки",
            ),
        ],
        sort=200,
    )
    kind_id = guid(rng)
    onec_stages = [
        Stage(guid(rng), description, "process", i + 1, canonical, predefined_name=predefined)
        for i, (predefined, description, canonical) in enumerate(ONEC_STAGES)
    ]
    typical = Pipeline(kind_id, ONEC, ONEC_DEAL_KIND, onec_stages, sort=1, is_main=True)
    return [retail, wholesale, general, tenders, typical, *_more_pipelines(rng)]


def _more_pipelines(rng: random.Random) -> list[Pipeline]:
    """Megaplan's programs, Creatio's stage list, RosBiznesSoft's deal types, the file's funnel."""
    out = []
    for sort, ((pid, name), rows) in enumerate(MEGAPLAN_PROGRAMS.items(), start=1):
        stages = [
            Stage(sid, sname, kind, (i + 1) * 10, canonical, reason_name=reason)  # type: ignore[arg-type]
            for i, (sid, sname, kind, canonical, reason) in enumerate(rows)
        ]
        out.append(Pipeline(pid, MEGAPLAN, name, stages, sort=sort, is_main=sort == 1))
    creatio = [Stage(guid(rng), name, kind, (i + 1) * 10, canonical)  # type: ignore[arg-type]
               for i, (name, kind, canonical) in enumerate(CREATIO_STAGES)]  # fmt: skip
    out.append(Pipeline(guid(rng), CREATIO, CREATIO_PIPELINE, creatio, sort=1, is_main=True))
    stage_id = 0
    for sort, (name, rows) in enumerate(RBS_PIPELINES.items(), start=1):
        stages = []
        for i, (sname, kind, canonical) in enumerate(rows):
            stage_id += 1
            stages.append(Stage(str(stage_id), sname, kind, (i + 1) * 10, canonical))  # type: ignore[arg-type]
        out.append(Pipeline(str(sort), RBS, name, stages, sort=sort, is_main=sort == 1))
    file_stages = [Stage(name, name, kind, (i + 1) * 10, canonical)  # type: ignore[arg-type]
                   for i, (name, kind, canonical) in enumerate(FILE_STAGES)]  # fmt: skip
    out.append(Pipeline(FILE_PIPELINE, FILE, FILE_PIPELINE, file_stages, sort=1, is_main=True))
    return out


def build_loss_reasons(rng: random.Random, created_at: datetime) -> list[LossReason]:
    reasons = []
    for source, rows in _REASONS.items():
        for rid, name, canonical, _ in rows:
            reasons.append(LossReason(rid or guid(rng), source, name, canonical, created_at))
    return reasons


@dataclass
class Ladder:
    """A pipeline as the generator walks it."""

    pipeline: Pipeline
    levels: list[list[Stage]]  # process stages per canonical level (new, contact, proposal, contract)
    level_of: dict[str, int]  # process stage id -> level
    won: Stage | None
    lost: list[Stage]
    refusal: Stage | None
    unsorted: Stage | None
    stage_by_id: dict[str, Stage] = field(default_factory=dict)

    @property
    def source_name(self) -> str:
        return self.pipeline.source_name

    def reason_stages(self) -> list[Stage]:
        return [s for s in self.lost if s.reason_name]

    def generic_lost(self) -> list[Stage]:
        return [s for s in self.lost if not s.reason_name]


def ladder_of(pipeline: Pipeline) -> Ladder:
    """Group a pipeline's process stages by level. An unmapped process stage takes the level of
    the next mapped one (it sits inside that level, before its mapped stages)."""
    process = sorted((s for s in pipeline.stages if s.kind == "process"), key=lambda s: s.sort)
    levels: list[list[Stage]] = [[] for _ in LEVELS]
    pending: list[Stage] = []
    level_of: dict[str, int] = {}
    for stage in process:
        if stage.canonical is None:
            pending.append(stage)
            continue
        level = LEVELS.index(stage.canonical)
        for p in pending:
            levels[level].append(p)
            level_of[p.id] = level
        pending.clear()
        levels[level].append(stage)
        level_of[stage.id] = level
    if pending:
        raise ValueError(f"{pipeline.source_name}/{pipeline.name}: unmapped stages after the last mapped one")
    by_kind = {k: [s for s in pipeline.stages if s.kind == k] for k in ("won", "lost", "conditional_refusal")}
    unsorted = next((s for s in process if s.name == UNSORTED_STAGE_NAME), None)
    return Ladder(
        pipeline=pipeline,
        levels=levels,
        level_of=level_of,
        won=by_kind["won"][0] if by_kind["won"] else None,
        lost=by_kind["lost"],
        refusal=by_kind["conditional_refusal"][0] if by_kind["conditional_refusal"] else None,
        unsorted=unsorted,
        stage_by_id={s.id: s for s in pipeline.stages},
    )


def ladders_of(world: World) -> dict[tuple[str, str], Ladder]:
    """(source name, pipeline id) -> Ladder."""
    return {(p.source_name, p.id): ladder_of(p) for p in world.pipelines}
