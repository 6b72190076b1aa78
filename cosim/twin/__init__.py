"""The analog twin of a network: convert(), the prepared tile cache, in-situ training."""
