"""Dagster definitions of the warehouse: every box of the data flow is an asset or a check."""
