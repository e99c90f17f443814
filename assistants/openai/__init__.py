"""The Assistants-compatible API: OpenAI Assistants v2 on the wire, Engramia underneath."""
