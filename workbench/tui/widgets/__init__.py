"""The workbench's own widgets, one module each."""
