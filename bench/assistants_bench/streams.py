"""Open N streamed runs at once against the site and report how they went, as JSON.

Run by bench/assistants_api.py as a process of its own, so the load's client work does not
share an interpreter with the recall timings it is compared against.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx


async def one(client: httpx.AsyncClient, key: str, assistant: str, number: int) -> dict[str, float]:
    body = {
        "assistant_id": assistant,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": f"Stream number {number}, go."}]},
    }
    headers = {"Authorization": f"Bearer {key}"}
    started = time.monotonic()
    first, completed = None, False
    async with client.stream(
        "POST", "/openai/v1/threads/runs", json=body, headers=headers
    ) as answer:
        async for line in answer.aiter_lines():
            if first is None and line == "event: thread.message.delta":
                first = time.monotonic()
            if line == "event: thread.run.completed":
                completed = True
            if line == "data: [DONE]":
                break
    ended = time.monotonic()
    return {
        "first_ms": ((first or ended) - started) * 1000,
        "total_s": ended - started,
        "completed": completed,
    }


async def main(args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.streams + 10, max_keepalive_connections=args.streams)
    async with httpx.AsyncClient(base_url=args.url, timeout=120, limits=limits) as client:
        results = await asyncio.gather(
            *(one(client, args.key, args.assistant, number) for number in range(args.streams))
        )
    print(
        json.dumps(
            {
                "first_ms": [r["first_ms"] for r in results],
                "total_s": [r["total_s"] for r in results],
                "completed": sum(r["completed"] for r in results),
                "tokens": args.tokens,
                "token_delay": args.token_delay,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--assistant", required=True)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=20, help="as the slow fake was started")
    parser.add_argument("--token-delay", type=float, default=0.1)
    asyncio.run(main(parser.parse_args()))
