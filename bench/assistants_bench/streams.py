"""Open N streamed runs at once against the site and report how they went, as JSON.

Run by bench/assistants_api.py as a process of its own, so the load's client work does not
share an interpreter with the recall timings it is compared against. Prints `streaming` as soon
as every stream has its first token (the parent then times recall), then the JSON at the end.
Times are time.monotonic() values, which every process on the machine shares.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx


class Progress:
    """Tells the parent once every stream is receiving tokens."""

    def __init__(self, streams: int) -> None:
        self.waiting = streams

    def first_token(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            print("streaming", flush=True)


async def one(
    client: httpx.AsyncClient, args: argparse.Namespace, number: int, progress: Progress
) -> dict[str, float | bool | None]:
    """One streamed create-thread-and-run: when it started, first answered, first got a token
    and ended."""
    body = {
        "assistant_id": args.assistant,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": f"Stream number {number}, go."}]},
    }
    headers = {"Authorization": f"Bearer {args.key}"}
    started = time.monotonic()
    created = first = None
    completed = False
    async with client.stream(
        "POST", "/openai/v1/threads/runs", json=body, headers=headers
    ) as answer:
        async for line in answer.aiter_lines():
            if created is None and line.startswith("event: "):
                created = time.monotonic()
            if first is None and line == "event: thread.message.delta":
                first = time.monotonic()
                progress.first_token()
            if line == "event: thread.run.completed":
                completed = True
            if line == "data: [DONE]":
                break
    if first is None:
        progress.first_token()  # a failed stream must not keep the parent waiting
    return {
        "started": started,
        "created": created,
        "first": first,
        "ended": time.monotonic(),
        "completed": completed,
    }


async def main(args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.streams + 10, max_keepalive_connections=args.streams)
    progress = Progress(args.streams)
    async with httpx.AsyncClient(base_url=args.url, timeout=300, limits=limits) as client:
        results = await asyncio.gather(
            *(one(client, args, number, progress) for number in range(args.streams))
        )
    print(json.dumps({"streams": results, "tokens": args.tokens, "token_delay": args.token_delay}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--assistant", required=True)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=20, help="as the slow fake was started")
    parser.add_argument("--token-delay", type=float, default=0.1)
    asyncio.run(main(parser.parse_args()))
