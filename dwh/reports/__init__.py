"""What the warehouse delivers to people who never open a SQL client: the Excel report of
lost deals (native charts, links to the CRM cards) and the weekly funnel report e-mail.

Everything here reads the ``marts`` schema only, in read-only transactions, and writes
nothing to the warehouse but the record of which weekly report went where.
"""
