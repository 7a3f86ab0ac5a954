"""Shared building blocks of the Dagster side: resources and the dbt translator."""
