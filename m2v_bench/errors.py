"""Errors that are the user's to fix: the CLI prints them as one line, without a traceback."""


class M2VError(Exception):
    """Base class of errors caused by input or configuration. The message names the file/sample and the fix."""


class ManifestError(M2VError):
    """A manifest file is missing or a record in it is malformed."""


class PrepareError(M2VError):
    """A raw dataset layout cannot be turned into manifests."""
