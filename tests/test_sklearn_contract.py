"""scikit-learn's own conformance suite on both estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fusekit import FusionClassifier, FusionRegressor

SUBSET_INVARIANCE = (
    "float32 matrix products differ by ~1e-7 between batch sizes (BLAS picks kernels by shape), "
    "above this check's rtol=1e-7; predictions on a subset agree to 1e-6"
)
WEIGHT_EQUIVALENCE = (
    "float32: weighting a row by 2 and repeating it sum the same losses in another order, so the "
    "fitted probabilities differ by ~1e-7 relative, above this check's rtol=1e-7 (with "
    "batch_size >= n both fits see one batch; tests/estimator/test_sample_weight.py shows the "
    "loss and the trained weights agree to float32 rounding)"
)
EXPECTED = {
    "check_methods_subset_invariance": SUBSET_INVARIANCE,
    "check_sample_weight_equivalence_on_dense_data": WEIGHT_EQUIVALENCE,
}


@parametrize_with_checks(
    [FusionClassifier(max_epochs=30), FusionRegressor(max_epochs=30)],
    expected_failed_checks=lambda estimator: EXPECTED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
