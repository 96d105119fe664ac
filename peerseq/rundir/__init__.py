"""The run directory: its layout, weights files, checkpoints, lock and log."""
