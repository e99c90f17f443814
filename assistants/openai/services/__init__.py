"""Services of the Assistants-compatible API: every write, keyword-only actor, audited."""
