"""Data quality: Great Expectations suites as asset checks (``checks``) and the data
engineers' alerts on failed runs and failed checks (``sensors``)."""
