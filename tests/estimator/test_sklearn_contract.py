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
WARM_START = (
    "warm_start=True: the check refits the fitted estimator and expects the first fit's "
    "predictions, but by sklearn's warm_start convention the second fit continues the first"
)

#: The checks that call ``partial_fit`` (the default instances run them all).
PARTIAL_FIT_CHECKS = (
    "check_fit_score_takes_y",
    "check_n_features_in_after_fitting",
    "check_estimators_partial_fit_n_features",
)
NO_PARTIAL_EARLY_STOPPING = (
    "partial_fit refuses early_stopping=True with a ValueError: early stopping needs a validation "
    "split of all the training rows, and partial_fit sees one chunk per call (scikit-learn's "
    "SGDClassifier refuses it too: 'early_stopping should be False with partial_fit')"
)
NO_PARTIAL_BALANCED = (
    "partial_fit refuses class_weight='balanced' with a ValueError: balancing needs the class "
    "frequencies of all the training rows (scikit-learn's SGDClassifier refuses it too)"
)


def expected_failures(estimator) -> dict[str, str]:
    expected = dict(EXPECTED)
    if estimator.warm_start:
        expected["check_supervised_y_2d"] = WARM_START
    refusal = None
    if getattr(estimator, "class_weight", None) == "balanced":
        refusal = NO_PARTIAL_BALANCED
    if estimator.early_stopping:
        refusal = NO_PARTIAL_EARLY_STOPPING
    if refusal is not None:
        expected.update(dict.fromkeys(PARTIAL_FIT_CHECKS, refusal))
    return expected


@parametrize_with_checks(
    [
        FusionClassifier(max_epochs=30),
        FusionRegressor(max_epochs=30),
        # the new training parameters, each in its non-default form
        FusionClassifier(max_epochs=30, class_weight="balanced", warm_start=True),
        FusionClassifier(max_epochs=30, early_stopping=True, validation_fraction=0.2),
        FusionRegressor(max_epochs=30, early_stopping=True, warm_start=True),
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
