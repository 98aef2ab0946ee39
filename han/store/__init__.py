"""Reading the embedded store's hour accounting (written by :mod:`sinks.sqlite` with :mod:`sinks.store`).

- :mod:`han.store.hours`: hours, days and months of a meter (``hours(db, meter, start, end)``).
- :mod:`han.store.extend`: the hook through which cost and capacity columns join ``han report``.
"""
