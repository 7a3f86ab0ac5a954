"""The generated world: deterministic, shaped like the demo company's systems, with its
deliberate defects at the documented rates, and time that moves on."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from sandbox.world.advance import advance
from sandbox.world.demo_config import write_demo_config
from sandbox.world.generate import WORLD_NOW, generate, generate_stream
from sandbox.world.model import Deal, Pipeline, World
from sandbox.world.vocabulary import break_inn, inn_is_valid, make_inn

MOSCOW = ZoneInfo("Europe/Moscow")
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)

# the documented bounds of each defect's rate at the demo's size (sandbox/README.md), with
# the population it is measured in
DEFECT_BOUNDS = {
    "missing_reason": (0.05, 0.12),
    "missing_comment": (0.11, 0.22),
    "skipped_conditional_refusal": (0.17, 0.36),
    "lost_too_fast": (0.025, 0.07),
    "unknown_reason": (0.035, 0.09),
    "reason_needs_review": (0.035, 0.09),
    "unmapped_stage": (0.05, 0.10),
    "onec_empty_dates": (0.015, 0.075),
    "onec_empty_refs": (0.012, 0.055),
    "duplicated_event": (0.008, 0.04),
}


def pipelines_of(world: World, source: str) -> dict[str, Pipeline]:
    return {p.name: p for p in world.pipelines if p.source_name == source}


def stage_of(world: World, deal: Deal, pipeline_id: str, stage_id: str):  # noqa: ANN201
    pipeline = next(p for p in world.pipelines if p.source_name == deal.source_name and p.id == pipeline_id)
    return pipeline.stage(stage_id)


# -- determinism -----------------------------------------------------------------------------
def test_same_seed_same_world_and_another_seed_another() -> None:
    a, b = generate(11, 250), generate(11, 250)
    assert repr(a) == repr(b)
    c = generate(12, 250)
    assert [d.name for d in c.deals] != [d.name for d in a.deals]
    assert [d.created_at for d in c.deals] != [d.created_at for d in a.deals]


def test_the_stream_yields_the_same_deals_as_generate() -> None:
    world, stream = generate_stream(5, 200)
    assert world.deals == []
    assert repr(list(stream)) == repr(generate(5, 200).deals)


def test_bad_arguments_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="deals must be at least 1"):
        generate(1, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(1, 10, now=WORLD_NOW.replace(tzinfo=None))


# -- the shape of the systems ------------------------------------------------------------------
def test_sources_and_their_shares(demo_world: World) -> None:
    assert [(s.name, s.system) for s in demo_world.sources] == [
        ("amo_retail", "amocrm"),
        ("b24_wholesale", "bitrix24"),
        ("erp", "onec"),
        ("megaplan_main", "megaplan"),
        ("creatio_b2b", "creatio"),
        ("rbs", "rosbiznessoft"),
        ("legacy_excel", "file"),
    ]
    shares = Counter(d.source_name for d in demo_world.deals)
    assert len(demo_world.deals) == demo_world.size == 3000
    assert 0.28 < shares["amo_retail"] / 3000 < 0.36
    assert 0.24 < shares["b24_wholesale"] / 3000 < 0.32
    assert 0.16 < shares["erp"] / 3000 < 0.24
    for name in ("megaplan_main", "creatio_b2b"):
        assert 0.04 < shares[name] / 3000 < 0.08
    for name in ("rbs", "legacy_excel"):
        assert 0.025 < shares[name] / 3000 < 0.055


def test_amocrm_pipelines(small_world: World) -> None:
    amo = pipelines_of(small_world, "amo_retail")
    assert set(amo) == {"Розница", "Опт"}
    for pipeline in amo.values():
        assert pipeline.id.isdigit()
        by_id = {s.id: s for s in pipeline.stages}
        assert by_id["142"].kind == "won" and by_id["142"].name == "Успешно реализовано"
        assert by_id["143"].kind == "lost" and by_id["143"].name == "Закрыто и не реализовано"
        first = min(pipeline.stages, key=lambda s: s.sort)
        assert first.name == "Неразобранное" and first.canonical == "new"
        assert all(s.id.isdigit() for s in pipeline.stages)
    refusal = [s for s in amo["Розница"].stages if s.kind == "conditional_refusal"]
    assert [s.name for s in refusal] == ["Условный отказ"]
    assert not [s for s in amo["Опт"].stages if s.kind == "conditional_refusal"]
    assert [s.name for s in amo["Опт"].stages if s.kind == "process" and s.canonical is None] == [
        "Расчёт стоимости"
    ]
    names = {r.name: r.canonical for r in small_world.loss_reasons if r.source_name == "amo_retail"}
    assert names["Дорого"] == "high_price" and names["Нет денег"] == "no_budget"
    assert names["Выбрали конкурента"] == "other_supplier" and names["Не выходит на связь"] is None


def test_bitrix24_categories(small_world: World) -> None:
    b24 = {p.id: p for p in small_world.pipelines if p.source_name == "b24_wholesale"}
    assert {i: p.name for i, p in b24.items()} == {"0": "Общая", "1": "Тендеры"}
    general = {s.id: s.kind for s in b24["0"].stages}
    assert general == {
        "NEW": "process",
        "PREPARATION": "process",
        "PREPAYMENT_INVOICE": "process",
        "EXECUTING": "process",
        "WON": "won",
        "LOSE": "lost",
        "APOLOGY": "lost",
    }
    tenders = b24["1"].stages
    assert all(s.id.startswith("C1:") for s in tenders)
    failures = {s.id: s.reason_name for s in tenders if s.kind == "lost"}
    assert failures["C1:LOSE"] is None
    assert failures["C1:LOSE_PRICE"] == "Проиграли: цена"
    assert failures["C1:LOSE_COMPETITOR"] and failures["C1:LOSE_BUDGET"]
    items = [r for r in small_world.loss_reasons if r.source_name == "b24_wholesale"]
    assert [r.id for r in items][:2] == ["79", "80"] and all(r.id.isdigit() for r in items)


def test_onec_deal_kind_and_stages(small_world: World) -> None:
    (kind,) = [p for p in small_world.pipelines if p.source_name == "erp"]
    assert kind.name == "Типовая продажа"
    uuid.UUID(kind.id)
    assert [s.predefined_name for s in sorted(kind.stages, key=lambda s: s.sort)] == [
        "ПервичныйКонтакт",
        "КвалификацияКлиента",
        "ФормированиеПредложения",
        "Презентация",
        "СогласованиеУсловий",
        "ПодготовкаКВыполнениюОбязательств",
        "ВыполнениеОбязательств",
    ]
    assert all(s.kind == "process" for s in kind.stages)  # won and lost are statuses in 1C
    for stage in kind.stages:
        uuid.UUID(stage.id)
    for reason in (r for r in small_world.loss_reasons if r.source_name == "erp"):
        uuid.UUID(reason.id)


def test_managers(small_world: World) -> None:
    managers = {m.name: m for m in small_world.managers}
    assert 8 <= len([m for m in small_world.managers if m.strengths]) <= 12
    ivanov, sidorov = managers["Иванов Иван"], managers["Сидоров Пётр"]
    assert ivanov.strengths["new"] < sidorov.strengths["new"]
    assert ivanov.strengths["contact"] < sidorov.strengths["contact"]
    assert ivanov.strengths["proposal"] > sidorov.strengths["proposal"]
    assert ivanov.strengths["contract"] > sidorov.strengths["contract"]
    for m in small_world.managers:
        assert m.email == m.email.lower()
        for source, uid in m.user_ids.items():
            if source in ("erp", "creatio_b2b"):
                uuid.UUID(uid)
            elif source == "legacy_excel":  # an export names the manager
                assert uid == m.name
            else:
                assert uid.isdigit()
    spellings = [e for m in small_world.managers for e in m.emails_by_source.values()]
    assert any(e != e.lower() for e in spellings)  # case differs between systems
    assert any(not all(m.active.values()) for m in small_world.managers)


def test_inn_check_digits() -> None:
    assert inn_is_valid("7707083893") and inn_is_valid("500100732259")
    assert not inn_is_valid("7707083894") and not inn_is_valid("77070838") and not inn_is_valid("77 07083893")
    import random

    rng = random.Random(3)
    for individual in (False, True):
        for _ in range(50):
            inn = make_inn(rng, individual)
            assert len(inn) == (12 if individual else 10) and inn_is_valid(inn)
            assert not inn_is_valid(break_inn(inn))


def test_customers_across_systems(demo_world: World) -> None:
    systems_per_customer = Counter()
    for key in {(c.customer_key, c.source_name) for c in demo_world.companies}:
        systems_per_customer[key[0]] += 1
    multi = sum(1 for n in systems_per_customer.values() if n >= 2) / len(systems_per_customer)
    assert 0.22 < multi < 0.38
    rendered = [c.inn_rendered for c in demo_world.companies if c.inn_rendered]
    assert any(r.startswith("ИНН ") for r in rendered)
    assert any(" " in r and not r.startswith("ИНН") for r in rendered)
    digits = [re.sub(r"\D", "", r) for r in rendered]
    assert any(len(d) == 12 and inn_is_valid(d) for d in digits)
    assert any(not inn_is_valid(d) for d in digits)  # impossible INNs
    assert any(c.inn_rendered is None for c in demo_world.companies)
    for contact in demo_world.contacts[:200]:
        assert CYRILLIC.search(contact.name) and "@" in contact.email
        assert re.sub(r"\D", "", contact.phone)[-10:].startswith("9")


# -- deals -------------------------------------------------------------------------------------
def test_deal_histories_are_consistent(demo_world: World) -> None:
    now = demo_world.now
    for deal in demo_world.deals:
        assert deal.moves and deal.moves[0].at == deal.created_at
        assert now - timedelta(days=430) < deal.created_at < now
        times = [m.at for m in deal.moves]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert deal.updated_at <= now and all(t <= now for t in times)
        assert (deal.pipeline_id, deal.stage_id, deal.manager_key) == (
            deal.moves[-1].pipeline_id,
            deal.moves[-1].stage_id,
            deal.moves[-1].manager_key,
        )
        final = stage_of(demo_world, deal, deal.pipeline_id, deal.stage_id)
        if deal.source_name == "erp":
            assert all(
                stage_of(demo_world, deal, m.pipeline_id, m.stage_id).kind == "process" for m in deal.moves
            )
        elif deal.status == "won":
            assert final.kind == "won" and deal.closed_at == deal.moves[-1].at
        elif deal.status == "lost":
            assert final.kind == "lost" and deal.closed_at == deal.moves[-1].at
        else:
            assert final.kind in ("process", "conditional_refusal") and deal.closed_at is None
        if deal.status != "lost":
            assert deal.loss_reason_id is None or final.kind == "conditional_refusal"
        if deal.deleted_at is not None:
            assert deal.updated_at == deal.deleted_at
    first = min(d.created_at for d in demo_world.deals)
    assert now - first > timedelta(days=365)  # at least twelve months of history


def test_deals_live_varied_lives(demo_world: World) -> None:
    deals = demo_world.deals
    statuses = Counter(d.status for d in deals)
    assert statuses["open"] > 50 and statuses["won"] > 500 and statuses["lost"] > 500
    assert sum(1 for d in deals if d.deleted_at) > 10
    switched = Counter(d.source_name for d in deals if len({m.pipeline_id for m in d.moves}) > 1)
    assert switched["amo_retail"] > 5 and switched["b24_wholesale"] > 5 and switched["erp"] == 0
    returned = [
        d
        for d in deals
        if any(
            stage_of(demo_world, d, a.pipeline_id, a.stage_id).kind == "conditional_refusal"
            and stage_of(demo_world, d, b.pipeline_id, b.stage_id).kind == "process"
            and a.manager_key != b.manager_key
            for a, b in zip(d.moves, d.moves[1:], strict=False)
        )
    ]
    assert len(returned) > 5  # handed back to work, to another manager
    backward = 0
    for d in deals:
        levels = [
            ["new", "contact", "proposal", "contract"].index(s.canonical)
            for m in d.moves
            if (s := stage_of(demo_world, d, m.pipeline_id, m.stage_id)).canonical
        ]
        backward += any(b < a for a, b in zip(levels, levels[1:], strict=False))
    assert backward > 50
    gaps = [
        (b.at - a.at).total_seconds() / 3600
        for d in deals
        for a, b in zip(d.moves, d.moves[1:], strict=False)
    ]
    assert min(gaps) < 1 and max(gaps) > 24 * 14  # from under an hour to weeks
    comments = [c.text for d in deals for c in d.comments]
    assert len(set(comments)) > 100 and all(CYRILLIC.search(t) or len(t) < 10 for t in comments)


def test_money(demo_world: World) -> None:
    erp = Counter(d.currency for d in demo_world.deals if d.source_name == "erp")
    assert erp["RUB"] > erp["USD"] > 0 and erp["EUR"] > 0
    megaplan = Counter(d.currency for d in demo_world.deals if d.source_name == "megaplan_main")
    assert megaplan["RUB"] > megaplan["USD"] > 0
    assert {d.currency for d in demo_world.deals if d.source_name not in ("erp", "megaplan_main")} == {"RUB"}
    assert all(d.amount > 0 for d in demo_world.deals)
    assert all(d.amount == d.amount.to_integral() for d in demo_world.deals if d.source_name == "amo_retail")
    first = min(d.created_at for d in demo_world.deals).astimezone(MOSCOW).date()
    day = first
    while day <= demo_world.now.astimezone(MOSCOW).date():
        for currency in ("USD", "EUR"):
            assert Decimal(50) < demo_world.rates[(currency, day)] < Decimal(200)
        day += timedelta(days=1)


def test_defects_are_present_at_their_documented_rates(demo_world: World) -> None:
    deals = [d for d in demo_world.deals if d.deleted_at is None]
    lost = [d for d in deals if d.status == "lost"]
    with_reason = [d for d in lost if "missing_reason" not in d.defects]
    retail = pipelines_of(demo_world, "amo_retail")["Розница"]
    assert any(s.kind == "conditional_refusal" for s in retail.stages)
    in_refusal_pipelines = [
        d for d in lost if d.source_name == "amo_retail" and d.moves[-1].pipeline_id == retail.id
    ]
    populations = {
        "missing_reason": lost,
        "missing_comment": lost,
        "lost_too_fast": lost,
        "reason_needs_review": lost,
        "unknown_reason": with_reason,
        "skipped_conditional_refusal": in_refusal_pipelines,
        "unmapped_stage": deals,
        "onec_empty_dates": [d for d in deals if d.source_name == "erp"],
        "onec_empty_refs": [d for d in deals if d.source_name == "erp"],
        "duplicated_event": [d for d in deals if d.source_name == "amo_retail"],
    }
    for tag, (low, high) in DEFECT_BOUNDS.items():
        population = populations[tag]
        rate = sum(1 for d in population if tag in d.defects) / len(population)
        assert low <= rate <= high, f"{tag}: {rate:.3f} not within [{low}, {high}]"
    # rule tags agree with the deals' own data, computed here from scratch
    for d in lost:
        if d.source_name in ("creatio_b2b", "legacy_excel"):  # Notes, the export: every comment, one per line
            short = len("\n".join(c.text for c in sorted(d.comments, key=lambda c: c.at)).strip()) < 10
        else:
            short = len(max(d.comments, key=lambda c: c.at).text.strip()) < 10 if d.comments else True
        assert ("missing_comment" in d.defects) == short
        fast = (d.closed_at - d.created_at) < timedelta(minutes=30)
        assert ("lost_too_fast" in d.defects) == fast
        final = stage_of(demo_world, d, d.moves[-1].pipeline_id, d.moves[-1].stage_id)
        # a Megaplan negative state names the reason when the custom field is empty
        no_reason = d.loss_reason_id is None and not final.reason_name and d.source_name != "megaplan_main"
        assert ("missing_reason" in d.defects) == no_reason
    for d in deals:
        if d.status != "lost":
            assert not {"missing_reason", "missing_comment", "lost_too_fast"} & d.defects
        if "onec_empty_dates" in d.defects or "onec_empty_refs" in d.defects:
            assert d.source_name == "erp"
        if "duplicated_event" in d.defects:
            assert d.source_name == "amo_retail" and len(d.moves) >= 2


# -- time moves --------------------------------------------------------------------------------
def fingerprint(world: World) -> dict[tuple[str, str], str]:
    return {(d.source_name, d.id): repr(d) for d in world.deals}


def test_advance_changes_exactly_what_it_reports(make_world: Callable[[int, int], World]) -> None:
    world = make_world(21, 600)
    before = fingerprint(world)
    other = repr((world.managers, world.companies, world.contacts, world.pipelines, world.loss_reasons))
    start = world.now
    changes = advance(world, 7, seed=3)
    assert world.now == start + timedelta(days=7) == changes.after and changes.before == start
    after = fingerprint(world)
    changed = {k for k in before if before[k] != after[k]}
    reported = {(s, i) for part in (changes.updated, changes.deleted) for s, ids in part.items() for i in ids}
    assert changed == reported and reported
    created = {(s, i) for s, ids in changes.created.items() for i in ids}
    assert created and created == set(after) - set(before)
    assert other == repr(
        (world.managers, world.companies, world.contacts, world.pipelines, world.loss_reasons)
    )
    by_key = {(d.source_name, d.id): d for d in world.deals}
    for key in reported | created:
        assert by_key[key].updated_at > start
    for source, ids in changes.deleted.items():
        assert all(by_key[(source, i)].deleted_at is not None for i in ids)
    for source, ids in changes.created.items():
        for i in ids:
            deal = by_key[(source, i)]
            assert start < deal.created_at <= world.now and deal.deleted_at is None
    new_amo = [int(i) for i in changes.created.get("amo_retail", [])]
    old_amo = [
        int(d.id) for d in world.deals if d.source_name == "amo_retail" and (d.source_name, d.id) in before
    ]
    assert min(new_amo) > max(old_amo)
    day = world.now.astimezone(MOSCOW).date()
    assert ("USD", day) in world.rates


def test_advance_is_deterministic(make_world: Callable[[int, int], World]) -> None:
    a, b = make_world(4, 300), make_world(4, 300)
    assert advance(a, 3.5, seed=9) == advance(b, 3.5, seed=9)
    assert repr(a) == repr(b)
    c = make_world(4, 300)
    advance(c, 3.5, seed=10)
    assert repr(c) != repr(a)
    with pytest.raises(ValueError, match="positive"):
        advance(c, 0, seed=1)


# -- the demo configuration ---------------------------------------------------------------------
def test_demo_config_maps_what_the_world_knows(small_world: World, tmp_path: Path) -> None:
    urls = {s.name: f"http://127.0.0.1:{i + 1}" for i, s in enumerate(small_world.sources)}
    urls["legacy_excel"] = str(tmp_path.parent / "exports" / "legacy_excel")
    env = {"ONEC_PASSWORD": "it's secret"}
    written = write_demo_config(small_world, urls, tmp_path, env)
    assert [p.name for p in written] == ["sources.yaml", "funnel.yaml", "alerts.yaml", "sandbox.env"]
    assert (tmp_path / "sandbox.env").read_text(encoding="utf-8").splitlines()[-1] == (
        "export ONEC_PASSWORD='it'\"'\"'s secret'"
    )
    sources = yaml.safe_load((tmp_path / "sources.yaml").read_text(encoding="utf-8"))["sources"]
    assert sources[2]["base_url"] == "http://127.0.0.1:3/trade/odata/standard.odata"
    assert sources[1]["webhook_url"] == "${B24_WHOLESALE_WEBHOOK}"
    funnel = yaml.safe_load((tmp_path / "funnel.yaml").read_text(encoding="utf-8"))
    assert [s["code"] for s in funnel["stages"]] == ["new", "contact", "proposal", "contract", "paid"]
    amo = funnel["sources"]["amo_retail"]
    assert amo["conditional_refusal_stage"] == "Условный отказ"
    assert (
        amo["stages"]["Розница / Переговоры"] == "contract" and amo["stages"]["Опт / Переговоры"] == "contact"
    )
    assert "Переговоры" not in amo["stages"] and "Расчёт стоимости" not in amo["stages"]
    assert "Не выходит на связь" not in amo["loss_reasons"] and amo["loss_reasons"]["Дорого"] == "high_price"
    b24 = funnel["sources"]["b24_wholesale"]
    assert b24["loss_reason_field"] == "UF_CRM_LOSS_REASON" and b24["loss_reason_stages"] is True
    assert (
        b24["loss_reasons"]["Проиграли: цена"] == "high_price"
        and "Проиграли: отмена закупки" not in b24["loss_reasons"]
    )
    assert "Сбор документов" not in b24["stages"]
    megaplan = funnel["sources"]["megaplan_main"]
    assert megaplan["loss_reason_field"] == "Причина отказа" and megaplan["loss_reason_stages"] is True
    assert (
        megaplan["loss_reasons"]["Отказ: дорого"] == "high_price"
        and megaplan["loss_reasons"]["Дорого"] == "high_price"
    )
    assert "Не дозвонились 📵" not in megaplan["loss_reasons"] and "Отказ" not in megaplan["loss_reasons"]
    assert "Расчёт" not in megaplan["stages"]
    files = next(s for s in sources if s["type"] == "file")
    assert files["path"] == "../exports/legacy_excel/deals"  # read against the config folder
    assert files["history_path"] == "../exports/legacy_excel/history"
    rbs = next(s for s in sources if s["type"] == "rosbiznessoft")
    assert rbs["objects"]["deals"] == "documents.sdelki" and rbs["stage_results"]["30"] == "lost"
    mapped = {**amo["stages"], **b24["stages"], **funnel["sources"]["erp"]["stages"]}
    for pipeline in small_world.pipelines:
        for stage in pipeline.stages:
            if stage.kind == "process" and stage.canonical:
                section = funnel["sources"][pipeline.source_name]["stages"]
                key = stage.name if stage.name in section else f"{pipeline.name} / {stage.name}"
                assert section[key] == stage.canonical
    assert set(mapped.values()) <= {"new", "contact", "proposal", "contract"}
    people = {p["name"]: p for p in funnel["people"]}
    assert "Попова Елена" in people and "erp:" in " ".join(people["Попова Елена"]["ids"])
    # an export shows the manager's name only: every manager with a file account is listed
    assert "legacy_excel:Петрова Анна" in people["Петрова Анна"]["ids"]
    alerts = yaml.safe_load((tmp_path / "alerts.yaml").read_text(encoding="utf-8"))
    assert alerts["channels"]["email"]["smtp_host"] == "127.0.0.1"
    assert alerts["channels"]["email"]["security"] == "none"


def test_demo_config_is_accepted_by_the_config_loader(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = pytest.importorskip("dwh.config.loader")
    urls = {s.name: f"http://127.0.0.1:{9000 + i}" for i, s in enumerate(small_world.sources)}
    for name in ("AMO_RETAIL_CLIENT_ID", "AMO_RETAIL_CLIENT_SECRET", "AMO_RETAIL_REFRESH_TOKEN"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("B24_WHOLESALE_WEBHOOK", "http://127.0.0.1:9001/rest/1/abc/")
    monkeypatch.setenv("ONEC_USER", "odata")
    monkeypatch.setenv("ONEC_PASSWORD", "pw")
    for name in ("MEGAPLAN_TOKEN", "CREATIO_USER", "CREATIO_PASSWORD", "RBS_USER", "RBS_PASSWORD"):
        monkeypatch.setenv(name, "x")
    urls["legacy_excel"] = str(tmp_path / "exports")
    write_demo_config(small_world, urls, tmp_path)
    config = loader.load_config(tmp_path)
    assert [s.name for s in config.sources.sources] == [
        "amo_retail", "b24_wholesale", "erp", "megaplan_main", "creatio_b2b", "rbs", "legacy_excel"
    ]  # fmt: skip
    assert config.funnel.sources["erp"].stages["Презентация"] == "proposal"
