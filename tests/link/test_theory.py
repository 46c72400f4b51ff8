import math

import numpy as np
import pytest

from digisem.link import (
    ber_awgn,
    ber_rayleigh_bpsk,
    bsc_flip_probability,
    ebn0_to_esn0_db,
    esn0_to_ebn0_db,
)

# AMP-SC paper, Table IV: BFP ratio p versus SNR (16-QAM, Gray, SNR = Eb/N0).
TABLE_IV = [
    1.41e-01, 1.19e-01, 9.77e-02, 7.75e-02, 5.86e-02, 4.19e-02, 2.79e-02, 1.70e-02, 9.25e-03, 4.39e-03,
    1.75e-03, 5.65e-04, 1.39e-04, 2.42e-05, 2.76e-06, 1.84e-07, 6.25e-09, 9.07e-11, 4.52e-13,
]


def q(x):
    return 0.5 * math.erfc(x / math.sqrt(2))


def test_table_iv_reproduced_within_one_percent():
    p = bsc_flip_probability("16qam", np.arange(19), snr_kind="ebn0")
    rel = np.abs(p - TABLE_IV) / np.array(TABLE_IV)
    assert rel.max() < 0.01, rel


@pytest.mark.parametrize("ebn0_db", [0.0, 4.0, 8.0, 12.0])
def test_closed_forms_from_textbook(ebn0_db):
    g = 10 ** (ebn0_db / 10)
    assert ber_awgn("bpsk", ebn0_db, "ebn0") == pytest.approx(q(math.sqrt(2 * g)), rel=1e-9)
    assert ber_awgn("qpsk", ebn0_db, "ebn0") == pytest.approx(q(math.sqrt(2 * g)), rel=1e-9)
    a = math.sqrt(0.8 * g)
    assert ber_awgn("16qam", ebn0_db, "ebn0") == pytest.approx((3 * q(a) + 2 * q(3 * a) - q(5 * a)) / 4, rel=1e-9)
    a = math.sqrt(2 / 7 * g)  # 64-QAM Gray, Cho & Yoon (2002)
    expected = (7 * q(a) + 6 * q(3 * a) - q(5 * a) + q(9 * a) - q(13 * a)) / 12
    assert ber_awgn("64qam", ebn0_db, "ebn0") == pytest.approx(expected, rel=1e-9)


def test_psk_approximation_reduces_to_qpsk_and_nearest_neighbour():
    # 4-PSK with the formula equals QPSK exactly; 8-PSK at high SNR equals 2/3 Q(sqrt(2Es/N0) sin(pi/8)).
    esn0 = 10 ** (20 / 10)
    assert ber_awgn("8psk", 20.0, "esn0") == pytest.approx(2 / 3 * q(math.sqrt(2 * esn0) * math.sin(math.pi / 8)), rel=1e-6)


def test_snr_conversions():
    assert ebn0_to_esn0_db(0.0, 4) == pytest.approx(10 * math.log10(4))
    assert ebn0_to_esn0_db(0.0, 4, code_rate=0.5) == pytest.approx(10 * math.log10(2))
    assert esn0_to_ebn0_db(ebn0_to_esn0_db(3.0, 6, 0.5), 6, 0.5) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="code_rate"):
        ebn0_to_esn0_db(0.0, 4, code_rate=1.5)


def test_rayleigh_bpsk_high_snr_asymptote():
    g = 10 ** 4
    assert ber_rayleigh_bpsk(40.0) == pytest.approx(1 / (4 * g), rel=1e-3)


def test_unknown_modulation_and_snr_kind():
    with pytest.raises(ValueError, match="unknown modulation '12qam'"):
        ber_awgn("12qam", 0.0)
    with pytest.raises(ValueError, match="snr_kind"):
        ber_awgn("16qam", 0.0, "snr")


def test_numerical_rayleigh_average_equals_bpsk_closed_form():
    from digisem.link.theory import ber_rayleigh

    snr = np.array([0.0, 10.0, 25.0])
    np.testing.assert_allclose(ber_rayleigh("bpsk", snr), ber_rayleigh_bpsk(snr), rtol=1e-6)


def test_bsc_flip_probability_refuses_a_nan_snr():
    with pytest.raises(ValueError, match="snr_db must be a number"):
        bsc_flip_probability("16qam", float("nan"))
