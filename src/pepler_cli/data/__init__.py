"""Data sources, feature extraction, splits and prepared-data I/O."""
