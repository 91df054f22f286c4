"""Repository-wide test set-up: the ``train_seed`` fixture for core and plugin tests alike."""

pytest_plugins = ("fusekit.testing.seeds",)
