"""Errors that nix2aci reports to its user as one clear line, never a traceback."""


class Nix2AciError(Exception):
    """A problem the user can act on; ``str(error)`` is the whole message."""


class SpecError(Nix2AciError):
    """A value breaks a rule of a spec (appc, OCI) or of the build spec.

    ``field`` is the path of the offending value in its document, written the
    way a user would look it up (``app.ports[0].count``); ``rule`` says what is
    allowed.
    """

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}" if field else rule)
        self.field = field
        self.rule = rule


class NotChecked(Nix2AciError):
    """An input that could not be checked: neither valid nor invalid (an encrypted image, say)."""


class UsageError(Nix2AciError):
    """The command line names something that cannot be used (exit status 2, like argparse's errors)."""
