def test_a_run_is_executed_by_its_job(api, llm):
    from tests.assistants.openai.conftest import run_jobs

    assistant = api("post", "/assistants", {"model": "gpt-test", "instructions": "Be kind."})
    assert assistant.status_code == 200, assistant.content
    thread = api("post", "/threads", {"messages": [{"role": "user", "content": "Hi there"}]})
    assert thread.status_code == 200, thread.content
    thread_id = thread.json()["id"]
    run = api("post", f"/threads/{thread_id}/runs", {"assistant_id": assistant.json()["id"]})
    assert run.status_code == 200, run.content
    assert run.json()["status"] == "queued"
    jobs = run_jobs()
    print(jobs[0].result, jobs[0].error)
    done = api("get", f"/threads/{thread_id}/runs/{run.json()['id']}")
    assert done.json()["status"] == "completed", done.json()
    messages = api("get", f"/threads/{thread_id}/messages").json()
    assert messages["data"][0]["content"][0]["text"]["value"] == "Hello there."


def test_stream(api, llm):
    from tests.fakes.llm_servers import Reply

    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    assistant = api("post", "/assistants", {"model": "gpt-test", "tools": tools}).json()
    thread = api("post", "/threads", {"messages": [{"role": "user", "content": "Weather?"}]}).json()
    llm.enqueue(Reply.calling("get_weather", {"city": "Oslo"}), Reply(text="It rains in Oslo."))
    response = api(
        "post", f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"], "stream": True}
    )
    body = b"".join(response).decode()
    print(body)
    assert "thread.run.requires_action" in body
    import json

    events = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    print(events)
    run = api("get", f"/threads/{thread['id']}/runs").json()["data"][0]
    call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    response = api(
        "post",
        f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs",
        {"tool_outputs": [{"tool_call_id": call["id"], "output": "12C"}], "stream": True},
    )
    body = b"".join(response).decode()
    events = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    print(events)
    assert events[-2] == "thread.run.completed"
    print(json.dumps(llm.requests[-1].json, indent=1))
