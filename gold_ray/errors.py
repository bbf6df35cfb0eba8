"""Errors a user can fix: the CLI prints their message (no traceback) and exits with 2.
And the driver's stop on SIGTERM, which the CLI turns into exit status 143."""


class UserError(Exception):
    """Bad input: the message names what is wrong and how to fix it."""


class Terminated(BaseException):
    """The driver got SIGTERM (`kill`, `ray job stop`, a node's preemption notice). Raised by the
    driver's poll loop, so the run shuts its Ray down on the way out; a BaseException, like
    KeyboardInterrupt, so no ``except Exception`` on that way swallows it."""
