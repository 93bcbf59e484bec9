"""The plugin host: the hook specifications, the plugin manager, the registry of specs and their checks.

Plugins are found through the ``ganbench`` entry-point group (``manager``); what they register is kept
in the ``registry`` and checked before any training (``validation``). What a plugin author imports is
in ``workbench.api``.
"""
