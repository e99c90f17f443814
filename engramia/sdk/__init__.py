"""Integrations of Engramia with agent frameworks (`engramia.sdk.openai_agents`)."""
