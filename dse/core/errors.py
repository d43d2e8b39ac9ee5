"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class DseError(Exception):
    """Bad input or an impossible request; the message names the cause."""


class ConfigError(DseError):
    """The experiment config is invalid; the message names the file and the field."""


class BudgetExhausted(Exception):
    """Raised by the evaluator when the search asks for more distinct evaluations than its budget."""
