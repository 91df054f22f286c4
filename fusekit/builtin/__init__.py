"""Built-in plugins. Every public module here is registered through the same pluggy hooks as a
third-party plugin (see :mod:`fusekit.engine.registry`); adding a method is adding a module."""
