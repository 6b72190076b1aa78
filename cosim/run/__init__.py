"""Layer simulation: options and records, the tile tasks, executors and checkpoints."""
