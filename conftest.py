"""Repository-wide test set-up: the ``train_seed`` fixture for every test folder (core and plugins)."""

pytest_plugins = ("fusekit.testing.seeds",)
