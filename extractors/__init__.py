"""Extractors: plain-Python clients that land each CRM's and 1C's records in raw_* tables.

They know nothing of Dagster, dbt or the sandbox. ``common`` holds what every source
shares; each source's package holds its client and its extract function.
"""
