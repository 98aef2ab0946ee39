"""Tariffs and prices: capacity tariff rules (TOML data), price sources and cost for ``han report``."""
