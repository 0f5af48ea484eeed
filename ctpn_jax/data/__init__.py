"""Detector data: label readers and writers, the synthetic page renderer, the input pipeline."""

from ctpn_jax.data.labels import (
    DONT_CARE,
    LabelError,
    Sample,
    TextLine,
    find_samples,
    read_icdar2013,
    read_icdar2015,
    read_json,
    read_labels,
)

__all__ = [
    "DONT_CARE",
    "LabelError",
    "Sample",
    "TextLine",
    "find_samples",
    "read_icdar2013",
    "read_icdar2015",
    "read_json",
    "read_labels",
]
