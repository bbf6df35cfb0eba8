"""Errors a user can fix: the CLI prints their message (no traceback) and exits with 2."""


class UserError(Exception):
    """Bad input: the message names what is wrong and how to fix it."""
