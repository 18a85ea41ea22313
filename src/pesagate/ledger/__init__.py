"""Double-entry books behind every wallet: collections credited exactly once, transfers."""
