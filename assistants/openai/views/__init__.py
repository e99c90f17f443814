"""Views of the Assistants-compatible API."""
