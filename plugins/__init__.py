"""The core ganbench plugins. Each module is registered through the ``ganbench`` entry points."""
