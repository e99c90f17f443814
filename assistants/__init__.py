"""The Assistants toolkit: move a team off OpenAI's Assistants API (export, import, verify,
cut-over).

It sits above memory and skills, because an Assistants export becomes patterns, function tools
become skills and assistant files become documents.
"""
