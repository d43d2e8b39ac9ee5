"""Sizes shown to people: KiB/MiB from raw bits and compression ratios, with hand-computed numbers."""

import pytest

from dse.results.sizes import (
    SizeInfo,
    compression_ratios,
    describe_size,
    format_ratio,
    format_size,
    size_columns,
    size_infos,
)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (8 * 1024, "bits", "1.00 KiB"),  # 1024 bytes
        (8 * 1024 * 12.3, "bits", "12.3 KiB"),
        (8 * 1024 * 123.4, "bits", "123 KiB"),
        (8 * 1024 * 1024 * 1.2, "bits", "1.20 MiB"),
        (8 * 1024**3 * 2, "bits", "2.00 GiB"),
        (100, "bits", "12.5 B"),  # 100 / 8 bytes
        (8 * 1023, "bits", "1023 B"),  # just below 1 KiB
        (2048, "bytes", "2.00 KiB"),
        (12345, "weights", "12,345 weights"),  # a count: a plain number
        (float("nan"), "bits", "nan"),
    ],
)
def test_format_size(value, unit, text):
    assert format_size(value, unit) == text


def test_ratios_are_the_baseline_over_the_size():
    # 12 KiB against a 128 KiB float model and a 32 KiB 8-bit one: 10.67x and 2.67x
    size, base = 12 * 8192, {"float": 128 * 8192, "8-bit": 32 * 8192}
    assert compression_ratios(size, base) == pytest.approx({"float": 128 / 12, "8-bit": 32 / 12})
    assert describe_size(size, base) == "12.0 KiB (10.7x vs float, 2.7x vs 8-bit)"
    assert describe_size(size) == "12.0 KiB"
    assert compression_ratios(0, base) == {} and describe_size(0, base) == "0 B"
    assert [format_ratio(r) for r in (0.5, 4, 10.42, 123.4)] == ["0.50x", "4.0x", "10.4x", "123x"]


def test_summary_sizes_round_trip_and_old_or_odd_entries_are_ignored():
    info = SizeInfo("bits", {"float": 3200.0, "8-bit": 800.0})
    summary = {"sizes": {"weight_bits": info.to_json(), "bad": "bits", "nounit": {"baselines": {}}}}
    assert size_infos(summary) == {"weight_bits": info}
    assert size_infos({}) == {}  # a run folder written before sizes were recorded
    assert info.baselines_text() == "float 400 B, 8-bit 100 B"
    assert info.describe(400) == "50 B (8.0x vs float, 2.0x vs 8-bit)"
    assert info.annotate(400) == "50 B, 8.0x vs float, 2.0x vs 8-bit"
    assert SizeInfo("bits").annotate(400) == "50 B"


def test_size_columns_for_tables():
    info = SizeInfo("bits", {"float": 3200.0, "8-bit": 800.0})
    assert size_columns("weight_bits", [400.0, 1600.0, None], info) == {
        "weight_bits size": ["50 B", "200 B", ""],
        "weight_bits vs float": ["8.0x", "2.0x", ""],
        "weight_bits vs 8-bit": ["2.0x", "0.50x", ""],
    }
