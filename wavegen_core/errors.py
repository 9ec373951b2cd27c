"""The base of errors a user can act on: stages print their message without a traceback."""


class WavegenError(Exception):
    """An error whose message alone tells the user what is wrong and what to do."""
