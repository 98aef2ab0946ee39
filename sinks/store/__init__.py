"""What the SQLite sink writes besides raw pushes: the hour accounting and its upkeep.

- :mod:`sinks.store.schema`: the SQL of the meters, hours and minutes tables, days/months views.
- :mod:`sinks.store.accounting`: sans-IO hour accounting (readings in, hour and minute deltas out).
- :mod:`sinks.store.localtime`: local hours in a meter's zone (23/25-hour days).
- :mod:`sinks.store.writer`: deltas into the tables, inside the sink's transaction.
- :mod:`sinks.store.retention`: pruning raw pushes and minute rows in the background.
- :mod:`sinks.store.migrate`: converting a version-2 store; rebuilding hours from raw pushes.

Reading it is :mod:`han.store.hours` (``hours(db, meter, start, end)``), used by ``han report``.
"""
