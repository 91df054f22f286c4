"""The engine: the fusion network, its training loop, plugin discovery and resolution.

Built on :mod:`fusekit.plugin` only; the scikit-learn edge (:mod:`fusekit.estimator`) drives it.
"""
