"""Reorder predictions: the engine (model, backtest) and its integration (store, services, views, API)."""
