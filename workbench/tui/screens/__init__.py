"""The workbench's screens and dialogs, one module each."""
