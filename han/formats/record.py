"""The JSON shape of a push (defined in :mod:`sinks.record`, shared with the jsonl sink)."""

from sinks.record import push_dict, register_dict

__all__ = ["push_dict", "register_dict"]
