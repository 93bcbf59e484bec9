"""Errors a user can cause. The CLI prints their message as one sentence and exits non-zero."""


class GanbenchError(Exception):
    """A problem the user can fix: bad input, missing data, an unusable checkpoint."""

    exit_code = 2


class ConfigError(GanbenchError):
    """A run configuration or hyper-parameter that cannot be used."""


class DataError(GanbenchError):
    """A dataset that is missing, unreadable or not what it claims to be."""


class CheckpointError(GanbenchError):
    """A checkpoint that is missing, corrupt, or belongs to another model."""


class DiskError(GanbenchError):
    """A run file that could not be written: a full disk, a read-only folder, missing permission."""


class PluginError(GanbenchError):
    """A plugin that is unknown, failed to load, or broke its contract."""


def nearest(name: str, choices) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when none is close."""
    import difflib

    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f' Did you mean "{match[0]}"?' if match else ""
