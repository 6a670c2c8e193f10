"""topn_weights: a score array -> the top-N weight array run_weights trades, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest import ConfigError, DataError, topn_weights

NAN = np.nan


def test_equal_weights_on_the_n_highest_scores():
    scores = np.array([[3.0, 1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(topn_weights(scores, 2), [[0.5, 0.0, 0.5, 0.0]])


def test_rows_between_rebalances_are_nan_and_offset_moves_them():
    scores = np.ones((5, 2))
    weights = topn_weights(scores, 1, every=2, offset=1)
    # Rebalances on bars 1 and 3; ties go to the first column.
    np.testing.assert_array_equal(np.isnan(weights[:, 0]), [True, False, True, False, True])
    np.testing.assert_array_equal(weights[1], [1.0, 0.0])


def test_nan_scores_are_never_picked():
    scores = np.array([[NAN, 1.0, 0.5]])
    np.testing.assert_array_equal(topn_weights(scores, 2), [[0.0, 0.5, 0.5]])


def test_long_short_gives_each_side_half_the_gross():
    scores = np.array([[4.0, 3.0, 2.0, 1.0, 0.0]])
    weights = topn_weights(scores, 2, short_n=1)
    # Longs A and B at 0.5 / 2 each; the lowest, E, short at -0.5.
    np.testing.assert_allclose(weights, [[0.25, 0.25, 0.0, 0.0, -0.5]])


def test_inverse_vol_weights_are_proportional_to_one_over_vol():
    scores = np.array([[2.0, 1.0, 0.0]])
    vol = np.array([[0.1, 0.3, 0.2]])
    weights = topn_weights(scores, 2, weighting="inverse_vol", volatility=vol)
    # 1/0.1 = 10 and 1/0.3 = 3.33: shares 10 / 13.33 = 0.75 and 0.25.
    np.testing.assert_allclose(weights, [[0.75, 0.25, 0.0]])


def test_zero_or_nan_volatility_leaves_the_asset_out_instead_of_an_infinite_weight():
    scores = np.array([[3.0, 2.0, 1.0]])
    vol = np.array([[0.0, NAN, 0.2]])
    weights = topn_weights(scores, 2, weighting="inverse_vol", volatility=vol)
    np.testing.assert_array_equal(weights, [[0.0, 0.0, 1.0]])
    assert np.isfinite(weights).all()


def test_negative_volatility_is_a_data_error_naming_the_cell():
    vol = np.array([[0.1, -0.2]])
    with pytest.raises(DataError, match=r"volatility is -0.2 for asset column 1 at bar 0"):
        topn_weights(np.ones((1, 2)), 1, weighting="inverse_vol", volatility=vol)


def test_inverse_vol_without_volatility_is_a_config_error():
    with pytest.raises(ConfigError, match="needs volatility="):
        topn_weights(np.ones((1, 2)), 1, weighting="inverse_vol")


def test_rebalance_bar_without_eligible_assets_closes_everything():
    np.testing.assert_array_equal(topn_weights(np.full((1, 2), NAN), 1), [[0.0, 0.0]])
