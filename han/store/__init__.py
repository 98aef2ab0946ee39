"""The embedded store's derived data: hour accounting, its schema and the API to read it.

- :mod:`han.store.schema`: the SQL of the raw and derived tables (one SQLite file).
- :mod:`han.store.accounting`: sans-IO hour accounting (readings in, hour and minute deltas out).
- :mod:`han.store.hours`: read hours, days and months (``hours(db, meter, start, end)``).
- :mod:`han.store.retention`: pruning raw pushes and minute series in the background.

The SQLite sink (:mod:`sinks.sqlite`) writes all of it; ``han report`` reads it.
"""
