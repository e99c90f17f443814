"""Conversation history for the Agents SDK Session protocol (a Thread's linear history)."""
