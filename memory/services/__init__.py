"""Every write and every non-trivial read of the memory app."""

from memory.services.aging import run_aging
from memory.services.documents import add_document, delete_document, search_documents
from memory.services.evaluations import (
    add_evaluation,
    evaluate_with_judge,
    feedback_summary,
    record_outcome,
)
from memory.services.learn import LearnResult, delete_pattern, learn_pattern, update_pattern
from memory.services.learn_bulk import BulkLearnResult, LearnItem, learn_patterns_bulk
from memory.services.merge import merge_patterns
from memory.services.metrics import project_metrics
from memory.services.recall import Match, RecallResult, recall_patterns

__all__ = [
    "BulkLearnResult",
    "LearnItem",
    "LearnResult",
    "Match",
    "RecallResult",
    "add_document",
    "add_evaluation",
    "delete_document",
    "delete_pattern",
    "evaluate_with_judge",
    "feedback_summary",
    "learn_pattern",
    "learn_patterns_bulk",
    "merge_patterns",
    "project_metrics",
    "recall_patterns",
    "record_outcome",
    "run_aging",
    "search_documents",
    "update_pattern",
]
