"""SNR sweep parsing (digisem.snr.parse_snr_range) and the SNR-kind names."""

import math

import pytest

from digisem.snr import (
    MAX_SNR_POINTS,
    SNR_KINDS,
    SNRRangeError,
    check_snr_kind,
    parse_snr_range,
)


@pytest.mark.parametrize("text, expected", [
    ("-18:18:6", [-18.0, -12.0, -6.0, 0.0, 6.0, 12.0, 18.0]),
    ("0:18:1", [float(v) for v in range(19)]),
    ("0:20:3", [0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0]),  # STOP not on the grid: the last point below it
    ("0:1:0.1", [round(0.1 * i, 10) for i in range(11)]),  # STOP included despite float steps
    ("-9:18:3", [-9.0, -6.0, -3.0, 0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0]),
    ("5:5:1", [5.0]),
    ("0,3,6", [0.0, 3.0, 6.0]),
    ("0, 3 ,6,", [0.0, 3.0, 6.0]),
    ("-2.5", [-2.5]),
    ("12", [12.0]),
    ("1e1", [10.0]),
])
def test_forms(text, expected):
    values = parse_snr_range(text)
    assert values == expected and all(isinstance(v, float) for v in values)


def test_float_steps_land_on_the_grid_exactly():
    values = parse_snr_range("-1:1:0.2")
    assert values[-1] == 1.0 and values[5] == 0.0 and len(values) == 11


def test_the_cap_on_points():
    assert len(parse_snr_range(f"0:{MAX_SNR_POINTS - 1}:1")) == MAX_SNR_POINTS
    with pytest.raises(SNRRangeError, match=f"{MAX_SNR_POINTS + 1} points; at most {MAX_SNR_POINTS}"):
        parse_snr_range(f"0:{MAX_SNR_POINTS}:1")
    with pytest.raises(SNRRangeError, match="at most"):
        parse_snr_range("0:1e9:1")  # a typo must not fill the memory
    with pytest.raises(SNRRangeError, match="at most"):
        parse_snr_range(",".join(["1"] * (MAX_SNR_POINTS + 1)))
    assert len(parse_snr_range(",".join(["1"] * MAX_SNR_POINTS))) == MAX_SNR_POINTS


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "0,nan", "1,inf", "0:inf:1", "nan:3:1", "0:3:nan", "0:3:inf"])
def test_non_finite_values_are_refused(text):
    with pytest.raises(SNRRangeError, match="finite"):
        parse_snr_range(text)


@pytest.mark.parametrize("text", ["", " ", "abc", "0:3", "0:3:1:2", "3:0:1", "0:3:0", "0:3:-1", "0;3", "0:x:1", "1,,x", "5 dB"])
def test_bad_text_is_refused_with_the_accepted_forms(text):
    with pytest.raises(SNRRangeError) as raised:
        parse_snr_range(text)
    assert isinstance(raised.value, ValueError), "callers may catch ValueError"
    message = str(raised.value)
    assert repr(text) in message or "START:STOP:STEP" in message


def test_snr_kinds():
    assert SNR_KINDS == ("esn0", "ebn0")
    assert check_snr_kind("ebn0") == "ebn0" and check_snr_kind("esn0") == "esn0"
    with pytest.raises(ValueError, match="unknown SNR kind 'snr'"):
        check_snr_kind("snr")
    assert math.isfinite(parse_snr_range("0")[0])
