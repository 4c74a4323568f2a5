"""The gateway's state: requests, routing decisions, feedback, client keys and spend."""

from polyroute.store.base import Store
from polyroute.store.export import ExportResult, export_feedback, feedback_outcomes
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
    "RequestRecord",
    "RequestStart",
    "RequestSummary",
    "SQLiteStore",
    "Store",
    "export_feedback",
    "feedback_outcomes",
]
