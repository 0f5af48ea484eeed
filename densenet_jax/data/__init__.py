"""Data for the recogniser: label-file readers, the synthetic line renderer, the grain pipeline."""
