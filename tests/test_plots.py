"""Plots: BER points with no errors counted stay visible."""

import matplotlib.axes

from digisem.plots import plot_metric


def test_a_sweep_with_no_bit_errors_is_drawn_not_dropped(tmp_path, monkeypatch):
    calls = []
    original = matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):
        calls.append((args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    results = [{"name": "coded", "meta": {"snr_kind": "ebn0"}, "results": {"snr_db": [0.0, 3.0, 6.0], "ber": [1e-3, 0.0, 0.0]}},
               {"name": "all zero", "meta": {"snr_kind": "ebn0"}, "results": {"snr_db": [0.0, 3.0], "ber": [0.0, 0.0]}}]
    plot_metric(results, "ber", tmp_path / "ber.png")
    triangles = {kwargs["label"]: args for args, kwargs in calls if len(args) > 2 and args[2] == "v"}
    assert triangles["coded: no errors counted"][0] == [3.0, 6.0]
    assert triangles["all zero: no errors counted"][0] == [0.0, 3.0]
    assert triangles["all zero: no errors counted"][1] == [1e-3 / 3] * 2, "below the lowest measured BER"
    assert (tmp_path / "ber.png").stat().st_size > 0

