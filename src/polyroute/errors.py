"""The exceptions polyroute raises for problems a *user* can cause.

Hierarchy (drawn once, here)::

    PolyrouteError
    ├── DataError          bad outcomes / models file, bad split request
    ├── ConfigError        bad configuration file or value
    ├── RouterError        unknown router name, bad saved router, featurizer mismatch
    │   └── NotFittedError estimate() before fit()
    ├── PolicyError        impossible preference (negative budget, floor outside [0, 1], ...)
    └── StoreError         the gateway's state store cannot be opened, or names no such record

The CLI turns any of these into a one-line message and exit code 2; the gateway turns them into an
OpenAI-shaped error body. Anything else is a bug and is allowed to raise.
"""

from __future__ import annotations


class PolyrouteError(Exception):
    """Base class: a problem the user can fix, with a message saying how."""


class DataError(PolyrouteError):
    """An outcomes or models file (or an in-memory table) is malformed."""


class ConfigError(PolyrouteError):
    """A configuration file or value is invalid."""


class RouterError(PolyrouteError):
    """A router cannot be built, loaded or used as asked."""


class NotFittedError(RouterError):
    """A router was asked for estimates before it was fitted."""


class PolicyError(PolyrouteError):
    """A routing preference cannot be honoured as given."""


class StoreError(PolyrouteError):
    """The gateway's state store cannot be opened or used as asked (e.g. unknown request id)."""
