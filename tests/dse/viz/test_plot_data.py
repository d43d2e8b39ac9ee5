import numpy as np
import pandas as pd
import pytest

from dse.viz.compare_plots import hv_band_data, overlay_data, pad_curve
from dse.viz.run_plots import heatmap_data, held_out_plot_data, parallel_data
from tests.dse.rundata_fixtures import E, run_data


def front():
    return [
        E(7, 99.0, 80, values={"a": 8, "b": 4}),
        E(2, 95.0, 40, values={"a": 2, "b": 8}),
        E(5, 97.0, 60, values={"a": 4, "b": 4}),
        E(9, 96.0, 60, values={"a": 2, "b": 2}),  # same size as eval 5: eval_id breaks the tie
    ]


def test_heatmap_matrix_is_layers_by_points_ordered_by_size():
    d = heatmap_data(front(), ["a", "b"], "weight_bits")
    assert d.eval_ids == [2, 5, 9, 7]
    assert d.sizes == [40, 60, 60, 80]
    assert d.matrix.tolist() == [[2, 4, 2, 8], [8, 4, 2, 4]]
    assert heatmap_data([], ["a", "b"], "weight_bits").matrix.shape == (2, 0)


def test_parallel_coordinates_scale_variables_by_choices_and_objectives_by_the_front():
    d = parallel_data(
        front(), ["a", "b"], ["accuracy", "weight_bits"], {"a": [2, 4, 8], "b": [2, 4, 8]}, "weight_bits"
    )
    assert d.axes == ["a", "b", "accuracy", "weight_bits"]
    assert d.low == [2, 2, 95, 40] and d.high == [8, 8, 99, 80]
    assert d.values[0].tolist() == [2, 8, 95, 40]  # eval 2, the smallest
    assert np.allclose(d.scaled[0], [0, 1, 0, 0]) and np.allclose(d.scaled[-1], [1, 1 / 3, 1, 1])
    assert d.colour == [40, 60, 60, 80]
    one = parallel_data(front()[:1], ["a"], ["accuracy"], {}, "weight_bits")
    assert one.scaled.tolist() == [[0.5, 0.5]]  # no range: the middle


def test_hv_band_pads_short_runs_with_their_last_value():
    assert pad_curve(np.array([0.1, 0.2]), 4).tolist() == [0.1, 0.2, 0.2, 0.2]
    assert pad_curve(np.array([]), 2).tolist() == [0.0, 0.0]
    curves = {
        "x": [np.array([0.1, 0.2, 0.4]), np.array([0.0, 0.3]), np.array([0.2, 0.2, 0.2])],
        "y": [np.array([0.5])],
    }
    bands = hv_band_data(curves)
    x, y = bands
    assert x.algorithm == "x" and x.runs == 3 and x.evaluations.tolist() == [1, 2, 3]
    assert x.median.tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert x.low.tolist() == pytest.approx([0.0, 0.2, 0.2]) and x.high.tolist() == pytest.approx(
        [0.2, 0.3, 0.4]
    )
    assert y.median.tolist() == [0.5]


def test_overlay_groups_fronts_by_algorithm_sorted_by_size():
    runs = [
        run_data("a-s0", "a", 0, [E(0, 95, 50), E(1, 99, 80), E(2, 94, 60)]),
        run_data("a-s1", "a", 1, [E(0, 97, 70)]),
        run_data("b-s0", "b", 0, [E(0, 92, 30), E(1, 96, 90, feasible=False)]),
    ]
    d = overlay_data(runs)
    assert (d.x_name, d.y_name) == ("weight_bits", "accuracy")
    assert d.fronts == {"a": [[(50, 95), (80, 99)], [(70, 97)]], "b": [[(30, 92)]]}
    assert d.baseline_y == 100.0 and d.threshold_y == 90.0


def test_held_out_plot_pairs_validation_and_test_by_size():
    frame = pd.DataFrame(
        {
            "eval_id": [3, 1],
            "weight_bits": [60.0, 40.0],
            "accuracy": [97.0, 95.0],
            "test_accuracy": [96.0, 93.5],
        }
    )
    d = held_out_plot_data(frame, "weight_bits", "accuracy", "test_accuracy", 100.0, 99.0)
    assert d.points == [(40.0, 95.0, 93.5), (60.0, 97.0, 96.0)]
    assert (d.baseline_y, d.held_baseline_y) == (100.0, 99.0)


def test_size_axes_show_kib_and_the_compression_against_float():
    import matplotlib.pyplot as plt

    from dse.results.sizes import SizeInfo
    from dse.viz.front import dress_size_axis, front_plot_data

    sizes = {"weight_bits": {"unit": "bits", "baselines": {"float": 819200.0, "8-bit": 204800.0}}}
    run = run_data("a-s0", "a", 0, [E(0, 95, 8192), E(1, 99, 81920)], sizes=sizes)
    info = SizeInfo("bits", {"float": 819200.0, "8-bit": 204800.0})
    assert front_plot_data(run).x_size == info and overlay_data([run]).x_size == info
    assert front_plot_data(run_data("old", "a", 0, [E(0, 95, 50)])).x_size is None  # no "sizes"
    fig, ax = plt.subplots()
    ax.set_xlim(8192, 81920)  # 1 KiB .. 10 KiB: 100x .. 10x smaller than 800 KiB of floats
    dress_size_axis(ax, info)
    assert ax.xaxis.get_major_formatter()(8192, 0) == "1.00 KiB"
    kib = ax.xaxis.get_major_locator()() / 8192  # ticks at round KiB, not at round bit counts
    assert len(kib) >= 3 and np.allclose(kib, np.round(kib * 2) / 2)
    fig.canvas.draw()
    (top,) = ax.child_axes
    assert sorted(top.get_xlim()) == pytest.approx([10.0, 100.0])
    assert top.xaxis.get_major_formatter()(10, 0) == "10x"
    assert top.get_xlabel() == "compression vs float"
    plt.close(fig)
