"""What a digest holds: the open issues of ``marts.dq_lost_deal_issues`` not yet reported on
a channel, with what the head of sales needs to act on each deal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import psycopg
from psycopg import sql

ISSUE_TITLES = {
    "missing_reason": "нет причины отказа",
    "missing_comment": "нет комментария",
    "skipped_conditional_refusal": "закрыта, минуя «Условный отказ»",
    "lost_too_fast": "проиграна слишком быстро",
    "reason_needs_review": "причину нужно проверить",
}


@dataclass(frozen=True)
class Issue:
    deal_key: str
    issue_type: str
    manager_name: str
    deal_name: str
    amount_base: Decimal | None
    stage: str | None
    reason: str | None
    crm_url: str | None
    first_detected_at: datetime

    @property
    def title(self) -> str:
        return ISSUE_TITLES.get(self.issue_type, self.issue_type)


NEW_ISSUES = """
select i.deal_key, i.issue_type, coalesce(i.manager_name, 'без ответственного'), coalesce(d.deal_name, i.deal_key),
       d.amount_base, coalesce(d.lost_at_canonical_stage, d.lost_at_stage),
       coalesce(d.loss_reason_name, d.loss_reason_raw), i.crm_url, i.first_detected_at
from {marts}.dq_lost_deal_issues as i
left join {marts}.fct_deals as d on d.deal_key = i.deal_key
where i.resolved_at is null
  and not exists (
      select 1 from ops.digest_items as r
      join ops.digests as g on g.digest_id = r.digest_id
      where r.deal_key = i.deal_key and r.issue_type = i.issue_type and g.channel = %(channel)s
        and g.status in ('sending', 'sent', 'uncertain')
  )
order by 3, i.first_detected_at, i.deal_key, i.issue_type
"""


def new_issues(conn: psycopg.Connection, channel: str, marts: str = "marts") -> list[Issue]:
    query = sql.SQL(NEW_ISSUES).format(marts=sql.Identifier(marts))
    return [Issue(*row) for row in conn.execute(query, {"channel": channel}).fetchall()]
