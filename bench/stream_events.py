"""What reading a streamed answer costs the web process: the vendor SDK's typed stream against
Engramia's providers, which read the same events as plain JSON (memory.providers.chat.events).

Each vendor wire format (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages) streams
the same answer of --tokens tokens from the loopback fake LLM, alternately through:

- the SDK: `create(stream=True)` and iterating its typed events (what the providers did before);
- the provider: `memory.providers.chat.get_chat(...).stream(request)`, as a run does.

CPU is this process's (`time.process_time`), the fake's serving thread included, so the
difference between the two is the client's; it is reported per stream and per token.

Run: .venv/bin/python bench/stream_events.py [--tokens 150] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STYLES = ("chat", "responses", "anthropic")


def configure(style: str, fake: Any) -> None:
    """The environment a project's LLM settings come from, pointed at the fake."""
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "ENGRAMIA_OPENAI_API"):
        os.environ.pop(name, None)
    if style == "anthropic":
        os.environ.update(
            ENGRAMIA_LLM="anthropic",
            ANTHROPIC_API_KEY="sk-ant-bench",
            ANTHROPIC_BASE_URL=fake.anthropic_base_url,
        )
    else:
        os.environ.update(
            ENGRAMIA_LLM="openai",
            OPENAI_API_KEY="sk-bench",
            OPENAI_BASE_URL=fake.openai_base_url,
            ENGRAMIA_OPENAI_API=style,
        )


def sdk_reader(style: str, fake: Any, clients: list[Any]) -> Callable[[], Awaitable[int]]:
    """A stream read through the SDK's typed events; returns the text events seen. The client
    made is added to clients (closed by the caller on its loop)."""
    import anthropic
    import openai

    messages = [{"role": "user", "content": "count"}]
    if style == "anthropic":
        claude = anthropic.AsyncAnthropic(
            api_key="sk-ant-bench", base_url=fake.anthropic_base_url, max_retries=0
        )
        clients.append(claude)

        async def read_anthropic() -> int:
            seen = 0
            events = await claude.messages.create(
                model="m", max_tokens=4096, messages=messages, stream=True
            )
            async with events:
                async for event in events:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        seen += 1
            return seen

        return read_anthropic
    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=fake.openai_base_url, max_retries=0)
    clients.append(client)

    async def read_openai() -> int:
        seen = 0
        if style == "chat":
            chunks = await client.chat.completions.create(model="m", messages=messages, stream=True)
            async with chunks:
                async for chunk in chunks:
                    seen += sum(1 for c in chunk.choices if c.delta and c.delta.content)
            return seen
        events = await client.responses.create(model="m", input=messages, stream=True)
        async with events:
            async for event in events:
                seen += event.type == "response.output_text.delta"
        return seen

    return read_openai


def provider_reader(style: str, fake: Any) -> Callable[[], Awaitable[int]]:
    """A stream read as a run reads it (the provider's stream)."""
    from memory.providers.chat import ChatMessage, ChatRequest, TextDelta, get_chat

    configure(style, fake)
    provider = get_chat(max_retries=0)
    request = ChatRequest(model="m", system="", messages=[ChatMessage("user", "count")])

    async def read() -> int:
        return sum([isinstance(e, TextDelta) async for e in provider.stream(request)])

    return read


async def measure(readers: dict[str, Callable[[], Awaitable[int]]], rounds: int) -> dict[str, Any]:
    """CPU ms per stream for each reader, alternating them round by round."""
    cpu: dict[str, list[float]] = {name: [] for name in readers}
    seen: dict[str, int] = {}
    for read in readers.values():  # connections, imports, first-call caches
        await read()
    for _ in range(rounds):
        for name, read in readers.items():
            started = time.process_time()
            seen[name] = await read()
            cpu[name].append((time.process_time() - started) * 1000)
    return {name: (statistics.median(values), seen[name]) for name, values in cpu.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engramia_site.settings")

    import anthropic
    import openai

    from memory.providers.chat import close_clients
    from tests.fakes.llm_servers import FakeLLMServer, Reply

    text = " ".join(f"token{n}" for n in range(args.tokens))
    print("conditions")
    load = os.getloadavg()[0]
    print(f"  machine    {platform.machine()}, {os.cpu_count()} cores, load {load:.2f}")
    versions = f"openai {openai.__version__}, anthropic {anthropic.__version__}"
    print(f"  python     {platform.python_version()}, {versions}")
    print(f"  answer     {args.tokens} text events per stream, loopback fake LLM (one thread)")
    print(f"  measure    process CPU per stream, p50 of {args.rounds} alternating rounds")
    print()
    print(f"  {'wire format':<12} {'SDK typed ms':>13} {'provider ms':>12} {'saved/token':>12}")
    with FakeLLMServer(default=Reply(text=text)) as fake:
        for style in STYLES:

            async def run(style: str = style) -> dict[str, Any]:
                clients: list[Any] = []
                try:
                    readers = {
                        "sdk": sdk_reader(style, fake, clients),
                        "provider": provider_reader(style, fake),
                    }
                    return await measure(readers, args.rounds)
                finally:
                    for client in clients:
                        await client.close()
                    await close_clients()

            result = asyncio.run(run())
            (sdk_ms, sdk_seen), (ours_ms, ours_seen) = result["sdk"], result["provider"]
            assert sdk_seen == ours_seen == args.tokens, (sdk_seen, ours_seen)
            saved = (sdk_ms - ours_ms) / args.tokens
            print(f"  {style:<12} {sdk_ms:13.1f} {ours_ms:12.1f} {saved:10.3f} ms")


if __name__ == "__main__":
    main()
