"""The gateway's state: requests, routing decisions, feedback, client keys and spend.

Two stores behind one interface: SQLite (one file, the embedded default) and PostgreSQL
(shared by replicas); :func:`open_store` picks one from the config.
"""

from polyroute.store.base import Store
from polyroute.store.export import ExportResult, export_feedback, feedback_outcomes
from polyroute.store.opening import open_store
from polyroute.store.postgres import PostgresStore
from polyroute.store.records import (
    CLIENT_CLOSED,
    ERROR,
    IN_PROGRESS,
    INTERRUPTED,
    OK,
    Attempt,
    CachedAnswer,
    CalibrationAnswer,
    Candidate,
    ConversationPin,
    FeedbackExample,
    FeedbackRecord,
    FeedbackTarget,
    KeyRecord,
    ModelSpend,
    RequestRecord,
    RequestStart,
    RequestSummary,
    ShadowComparison,
    StoredResponse,
)
from polyroute.store.sqlite import SQLiteStore

__all__ = [
    "Attempt",
    "CachedAnswer",
    "CalibrationAnswer",
    "CLIENT_CLOSED",
    "Candidate",
    "ConversationPin",
    "ERROR",
    "ExportResult",
    "FeedbackExample",
    "FeedbackRecord",
    "FeedbackTarget",
    "IN_PROGRESS",
    "INTERRUPTED",
    "KeyRecord",
    "ModelSpend",
    "OK",
    "PostgresStore",
    "RequestRecord",
    "RequestStart",
    "RequestSummary",
    "SQLiteStore",
    "ShadowComparison",
    "Store",
    "StoredResponse",
    "export_feedback",
    "feedback_outcomes",
    "open_store",
]
