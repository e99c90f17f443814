"""Tier 3: code_interpreter and images (outputs or inputs) are refused with a 400 naming the field.

Never a 501 and never silently dropped: code written for OpenAI learns at once what it cannot
have here.
"""

from __future__ import annotations

import pytest

from assistants.models import Assistant, Message, Run, Thread
from tests.assistants.openai.conftest import new_assistant, new_thread

CODE = {"type": "code_interpreter"}
IMAGE_FILE = {"type": "image_file", "image_file": {"file_id": "file-1"}}
IMAGE_URL = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
INTERPRETER_FILES = {"code_interpreter": {"file_ids": ["file-1"]}}

# (method, path template, body, the param the refusal names)
REFUSALS = [
    ("post", "/assistants", {"model": "m", "tools": [CODE]}, "tools[0]"),
    ("post", "/assistants/{assistant}", {"tools": [{"type": "file_search"}, CODE]}, "tools[1]"),
    (
        "post",
        "/assistants",
        {"model": "m", "tool_resources": INTERPRETER_FILES},
        "tool_resources.code_interpreter",
    ),
    ("post", "/threads", {"tool_resources": INTERPRETER_FILES}, "tool_resources.code_interpreter"),
    (
        "post",
        "/threads",
        {"messages": [{"role": "user", "content": [IMAGE_FILE]}]},
        "messages[0].content[0].image_file",
    ),
    (
        "post",
        "/threads/{thread}/messages",
        {"role": "user", "content": [{"type": "text", "text": "look"}, IMAGE_URL]},
        "content[1].image_url",
    ),
    (
        "post",
        "/threads/{thread}/messages",
        {"role": "user", "content": "run this", "attachments": [{"file_id": "f", "tools": [CODE]}]},
        "attachments[0].tools[0]",
    ),
    (
        "post",
        "/threads/{thread}/runs",
        {"assistant_id": "{assistant}", "tools": [CODE]},
        "tools[0]",
    ),
    (
        "post",
        "/threads/{thread}/runs",
        {"assistant_id": "{assistant}", "tool_choice": CODE},
        "tool_choice",
    ),
    (
        "post",
        "/threads/{thread}/runs",
        {
            "assistant_id": "{assistant}",
            "additional_messages": [{"role": "user", "content": [IMAGE_FILE]}],
        },
        "additional_messages[0].content[0].image_file",
    ),
    ("post", "/threads/runs", {"assistant_id": "{assistant}", "tools": [CODE]}, "tools[0]"),
    (
        "post",
        "/threads/runs",
        {"assistant_id": "{assistant}", "tool_resources": INTERPRETER_FILES},
        "tool_resources.code_interpreter",
    ),
]


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(inner, ids) for key, inner in value.items()}
    if isinstance(value, list):
        return [_fill(inner, ids) for inner in value]
    return value


def _state():
    return (
        list(Assistant.objects.values_list("tools", flat=True)),
        Thread.objects.count(),
        Message.objects.count(),
        Run.objects.count(),
    )


@pytest.mark.parametrize(
    "method, template, body, param", REFUSALS, ids=[f"{r[1]} {r[3]}" for r in REFUSALS]
)
def test_tier3_features_are_refused_naming_the_field(api, method, template, body, param):
    ids = {"assistant": new_assistant(api)["id"], "thread": new_thread(api, "hi")["id"]}
    before = _state()
    response = api(method, _fill(template, ids), _fill(body, ids))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "unsupported_tool",
        param,
        "invalid_request_error",
    )
    assert "code_interpreter" in error["message"] or "Image" in error["message"]
    assert _state() == before  # nothing was stored, nothing was dropped quietly
