"""Great Expectations suites for the warehouse: ``raw`` for the landed API records, ``marts``
for the tables analysts read, ``runner`` to validate a table against a suite."""
