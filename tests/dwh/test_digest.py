"""The digest to the head of sales, end to end with a real SMTP server and the Telegram
stand-in: the right deals, grouped right, once, retried after a failure, never twice."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from dwh.config.models import AlertsConfig
from dwh.digest import deliver, render, state
from dwh.digest.issues import ISSUE_TITLES, Issue
from dwh.warehouse import Target
from sandbox.telegram import TelegramStandIn
from tests.mail import SmtpServer

SCHEMA = "digest_test_marts"
CHAT = "-1001234567890"

DEALS = [  # deal_key, deal name, amount, stage, reason, manager
    ("amo_retail:101", "Поставка кофе", Decimal("150000"), "proposal", None, "Иванов Иван"),
    (
        "amo_retail:102",
        "Оборудование <б/у> & сервис",
        Decimal("82000.50"),
        "contact",
        "Нет бюджета",
        "Иванов Иван",
    ),
    ("b24_wholesale:7", "Опт: чай", Decimal("1200000"), "contract", "Есть другой поставщик", "Сидоров Пётр"),
]
ISSUES = [
    ("amo_retail:101", "missing_reason"),
    ("amo_retail:101", "missing_comment"),
    ("amo_retail:102", "lost_too_fast"),
    ("b24_wholesale:7", "reason_needs_review"),
]


@pytest.fixture
def conn(warehouse: Target):
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        c.execute(f"drop schema if exists {SCHEMA} cascade")
        c.execute(f"create schema {SCHEMA}")
        c.execute(f"""create table {SCHEMA}.fct_deals (deal_key text, deal_name text, amount_base numeric,
                      lost_at_stage text, lost_at_canonical_stage text, loss_reason_name text, loss_reason_raw text)""")
        c.execute(f"""create table {SCHEMA}.dq_lost_deal_issues (deal_key text, issue_type text, manager_name text,
                      crm_url text, first_detected_at timestamptz, resolved_at timestamptz)""")
        for key, name, amount, stage, reason, _ in DEALS:
            c.execute(f"insert into {SCHEMA}.fct_deals values (%s, %s, %s, %s, %s, %s, %s)",
                      (key, name, amount, stage, stage, reason, reason))  # fmt: skip
        managers = {d[0]: d[5] for d in DEALS}
        for key, issue in ISSUES:
            source, deal_id = key.split(":")
            url = f"http://127.0.0.1:18081/leads/detail/{deal_id}" if source == "amo_retail" else (
                f"http://127.0.0.1:18082/crm/deal/details/{deal_id}/")  # fmt: skip
            c.execute(f"insert into {SCHEMA}.dq_lost_deal_issues values (%s, %s, %s, %s, now(), null)",
                      (key, issue, managers[key], url))  # fmt: skip
        state.ensure(c)
        c.execute("truncate ops.digest_items, ops.digests")
        yield c


@pytest.fixture
def telegram_standin():
    standin = TelegramStandIn()
    standin.start()
    yield standin
    standin.stop()


def alerts_for(
    smtp_port: int, telegram_url: str, monkeypatch: pytest.MonkeyPatch, token: str
) -> AlertsConfig:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    return AlertsConfig.model_validate({
        "channels": {
            "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "security": "none", "sender": "dwh@example.ru"},
            "telegram": {"bot_token": "${TELEGRAM_BOT_TOKEN}", "api_base_url": telegram_url},
        },
        "recipients": {
            "head_of_sales": {"email": ["rop@example.ru"], "telegram_chat_ids": [CHAT],
                              "receives": ["lost_deal_issues_digest"]},
            "data_engineers": {"email": ["data@example.ru"], "receives": ["run_failures"]},
        },
    })  # fmt: skip


def test_digest_reaches_email_and_telegram_grouped_with_links(
    conn, telegram_standin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer() as smtp:
        alerts = alerts_for(smtp.port, telegram_standin.url, monkeypatch, telegram_standin.token)
        report = deliver.deliver(conn, alerts, tmp_path / "outbox", marts=SCHEMA)
    assert report.sent == {"email": 4, f"telegram:{CHAT}": 4}
    [message] = smtp.inbox.messages
    assert smtp.inbox.envelopes[0][1] == ["rop@example.ru"], "only the recipients of the digest"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    # grouped by manager, in order, with each manager's deals under them
    assert text.index("Иванов Иван (3)") < text.index("Поставка кофе") < text.index("Сидоров Пётр (1)")
    assert text.index("Сидоров Пётр (1)") < text.index("Опт: чай")
    for _key, kind in ISSUES:
        assert ISSUE_TITLES[kind] in text
    assert "http://127.0.0.1:18081/leads/detail/101" in text
    assert '<a href="http://127.0.0.1:18082/crm/deal/details/7/">Опт: чай</a>' in html
    assert "Оборудование &lt;б/у&gt; &amp; сервис" in html, "names are escaped in HTML"
    assert "1 200 000 RUB" in text and "82 000 RUB" in text
    [tg] = telegram_standin.messages
    assert tg.chat_id == CHAT
    assert (
        '<a href="http://127.0.0.1:18081/leads/detail/102">Оборудование &lt;б/у&gt; &amp; сервис</a>'
        in tg.text
    )
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == sorted(f.name for f in report.files)


def test_each_issue_is_reported_once_and_new_ones_only(conn, telegram_standin, tmp_path, monkeypatch) -> None:
    with SmtpServer() as smtp:
        alerts = alerts_for(smtp.port, telegram_standin.url, monkeypatch, telegram_standin.token)
        deliver.deliver(conn, alerts, tmp_path, marts=SCHEMA)
        second = deliver.deliver(conn, alerts, tmp_path, marts=SCHEMA)
        assert second.sent == {} and set(second.nothing_new) == {"email", f"telegram:{CHAT}"}
        conn.execute(f"""insert into {SCHEMA}.dq_lost_deal_issues
                         values ('b24_wholesale:7', 'missing_comment', 'Сидоров Пётр', null, now(), null)""")
        third = deliver.deliver(conn, alerts, tmp_path, marts=SCHEMA)
    assert third.sent == {"email": 1, f"telegram:{CHAT}": 1}
    assert len(smtp.inbox.messages) == 2, "nothing new: nothing sent"
    assert "Опт: чай" in smtp.inbox.messages[1].get_body(("plain",)).get_content()
    assert "Поставка кофе" not in smtp.inbox.messages[1].get_body(("plain",)).get_content()


def test_resolved_issues_are_not_reported(conn, telegram_standin, tmp_path, monkeypatch) -> None:
    conn.execute(
        f"update {SCHEMA}.dq_lost_deal_issues set resolved_at = now() where deal_key = 'amo_retail:101'"
    )
    with SmtpServer() as smtp:
        report = deliver.deliver(conn, alerts_for(smtp.port, telegram_standin.url, monkeypatch,
                                                  telegram_standin.token), tmp_path, marts=SCHEMA)  # fmt: skip
    assert report.sent["email"] == 2
    assert "Поставка кофе" not in smtp.inbox.messages[0].get_body(("plain",)).get_content()


def test_failed_send_is_retried_next_run_and_never_marked_sent(
    conn, telegram_standin, tmp_path, monkeypatch
) -> None:
    from tests.support import free_port

    dead = alerts_for(free_port(), telegram_standin.url, monkeypatch, telegram_standin.token)
    first = deliver.deliver(conn, dead, tmp_path, marts=SCHEMA)
    assert "email" in first.failed and first.sent == {f"telegram:{CHAT}": 4}
    assert conn.execute("select status from ops.digests where channel = 'email'").fetchall() == [("failed",)]
    with SmtpServer() as smtp:
        retry = deliver.deliver(conn, alerts_for(smtp.port, telegram_standin.url, monkeypatch,
                                                 telegram_standin.token), tmp_path, marts=SCHEMA)  # fmt: skip
    assert retry.sent == {"email": 4}, "the e-mail is retried; Telegram already had them"
    assert len(smtp.inbox.messages) == 1 and len(telegram_standin.messages) == 1


def test_no_duplicate_after_a_crash_between_send_and_record(
    conn, telegram_standin, tmp_path, monkeypatch
) -> None:
    class Crash(BaseException):
        pass

    def crash(*args, **kwargs):
        raise Crash

    with SmtpServer() as smtp:
        alerts = alerts_for(smtp.port, telegram_standin.url, monkeypatch, telegram_standin.token)
        with monkeypatch.context() as m:
            m.setattr(state, "finish", crash)
            with pytest.raises(Crash):
                deliver.deliver(conn, alerts, tmp_path, marts=SCHEMA)
        assert len(smtp.inbox.messages) == 1, "the e-mail went out before the crash"
        after = deliver.deliver(conn, alerts, tmp_path, marts=SCHEMA)
    assert len(smtp.inbox.messages) == 1, "and is not sent again"
    assert after.uncertain, "the interrupted digest is reported as uncertain"
    assert after.sent == {f"telegram:{CHAT}": 4}, "the channel not reached before the crash still gets it"
    statuses = dict(conn.execute("select channel, status from ops.digests").fetchall())
    assert statuses == {"email": "uncertain", f"telegram:{CHAT}": "sent"}


def issue(i: int, manager: str, kind: str = "missing_comment") -> Issue:
    from datetime import UTC, datetime

    return Issue(f"amo_retail:{i}", kind, manager, f"Сделка {i}", Decimal(i * 1000), "contact", None,
                 f"http://crm/leads/detail/{i}", datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip


def test_a_year_of_history_becomes_a_summary_not_ten_thousand_lines() -> None:
    issues = [
        issue(i, f"Менеджер {i % 7}", "missing_comment" if i % 3 else "missing_reason")
        for i in range(1, 10001)
    ]
    rendered = render.render(issues)
    assert rendered.is_summary
    assert len(rendered.text.splitlines()) < 60
    assert "Сделка 10000" in rendered.text, "the largest deals are named"
    assert "Сделка 1 " not in rendered.text
    for m in range(7):
        assert f"Менеджер {m}:" in rendered.text
    assert "missing" not in rendered.text, "types are named in words"


def test_a_small_digest_lists_every_deal() -> None:
    rendered = render.render([issue(i, "Иванов Иван") for i in range(1, 11)])
    assert not rendered.is_summary
    assert all(f"Сделка {i} —" in rendered.text for i in range(1, 11))
