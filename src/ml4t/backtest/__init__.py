"""ml4t.backtest."""
