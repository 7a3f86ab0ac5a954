"""One package per domain: config, extract, dbt, quality, delivery."""
