"""The drift arithmetic: counting a batch of rows into a profile's bins, and the PSI between two counts.

Why PSI (Population Stability Index) and not a statistical test such as Kolmogorov-Smirnov or chi-square:
- it measures how far the distribution moved, not how sure we are that it moved: a test's p-value falls
  towards 0 for any tiny shift once the window is large, so its alert would depend on traffic volume;
- it needs only bin counts on both sides, so the reference is a few kilobytes and the API's window is a
  fixed array per column, whatever the traffic (KS needs the raw values);
- it treats numeric bins, categories, unseen values and nulls the same way (each is a bin), and has
  thresholds that practitioners share: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 a shift worth
  acting on (the API's default threshold).

PSI = sum over bins of (current - reference) * ln(current / reference), with both sides as proportions.
An empty bin would make that infinite, so both sides are smoothed first by adding SMOOTHING (half a row,
the Jeffreys prior) to every bin. PSI is the symmetric Kullback-Leibler divergence, KL(c||r) + KL(r||c),
which is how the tests check it independently (scipy.stats.entropy).

With few rows PSI is biased upwards by sampling noise, about (bins - 1) / rows: 0.05 for 11 bins over
200 rows. That is why the API scores a window only once it holds MONITORING_MIN_ROWS rows.
"""

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from service.reference_profile import CategoricalReference, NumericReference

SMOOTHING = 0.5


def psi(reference: NDArray[np.float64], current: NDArray[np.float64]) -> float:
    """PSI between two count vectors over the same bins (smoothed, see the module's docstring)."""
    expected = (reference + SMOOTHING) / (reference.sum() + SMOOTHING * len(reference))
    actual = (current + SMOOTHING) / (current.sum() + SMOOTHING * len(current))
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class NumericBins:
    """Counts a block of numeric columns into their reference bins, all columns at once.

    Every column gets the same number of slots (the widest column's bins, then nulls) so one vectorised
    comparison and one bincount count a whole block; slots a narrower column cannot reach stay empty and
    are cut off again by `column_counts`.
    """

    def __init__(self, columns: tuple[NumericReference, ...]) -> None:
        self.columns = columns
        widest = max((len(column.edges) for column in columns), default=0)
        # Edges padded with +inf: no value reaches a padded bin, NaN reaches none at all (comparisons false).
        self.edges = np.full((len(columns), widest), np.inf)
        for index, column in enumerate(columns):
            self.edges[index, : len(column.edges)] = column.edges
        self.null_slot = widest + 1
        self.width = widest + 2
        self.offsets = np.arange(len(columns)) * self.width
        self.low = np.array([column.min for column in columns])
        self.high = np.array([column.max for column in columns])

    def count(self, block: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(slot counts, flat, `width` per column; out-of-range counts per column) of rows x columns."""
        nulls = np.isnan(block)
        bins = (block[:, :, None] >= self.edges[None, :, :]).sum(axis=2)
        bins[nulls] = self.null_slot
        counts = np.bincount((bins + self.offsets).ravel(), minlength=len(self.columns) * self.width)
        with np.errstate(invalid="ignore"):
            out_of_range = ((block < self.low) | (block > self.high)).sum(axis=0)
        return counts, out_of_range

    def column_counts(self, counts: NDArray[np.int64], index: int) -> NDArray[np.float64]:
        """Column `index`'s bins then nulls, as in NumericReference.reference_counts."""
        start = index * self.width
        bins = len(self.columns[index].counts)
        row = counts[start : start + self.width].astype(np.float64)
        return np.concatenate([row[:bins], row[self.null_slot : self.null_slot + 1]])


def count_categories(column: CategoricalReference, values: pd.Series) -> NDArray[np.int64]:
    """A categorical column's slots for `values`: each category, any other value, nulls."""
    nulls = values.isna()
    positions = pd.Index(column.categories).get_indexer(pd.Index(values[~nulls].astype(str)))
    positions[positions < 0] = len(column.categories)
    counts = np.bincount(positions, minlength=len(column.categories) + 2)
    counts[-1] = int(nulls.sum())
    return counts
