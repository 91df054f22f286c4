"""scikit-learn's own conformance suite on both estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fusekit import FusionClassifier, FusionRegressor

SUBSET_INVARIANCE = (
    "float32 matrix products differ by ~1e-7 between batch sizes (BLAS picks kernels by shape), "
    "above this check's rtol=1e-7; predictions on a subset agree to 1e-6"
)
EXPECTED = {"check_methods_subset_invariance": SUBSET_INVARIANCE}


@parametrize_with_checks(
    [FusionClassifier(max_epochs=30), FusionRegressor(max_epochs=30)],
    expected_failed_checks=lambda estimator: EXPECTED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
