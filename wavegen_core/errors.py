"""The base of errors a user can act on, and the exit codes every command uses for them."""

# An error a user can act on (bad data, a missing program): its message alone is printed.
EXIT_FAILED = 1
# Invalid params, found before any compute (the stage contract, rule 2).
EXIT_BAD_PARAMS = 2


class WavegenError(Exception):
    """An error whose message alone tells the user what is wrong and what to do."""
