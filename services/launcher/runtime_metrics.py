"""The metrics endpoints and the Sender listener `luna up` records in runtime.json, and the
figures `luna status` prints from them."""

from __future__ import annotations

from typing import Any

import aiohttp

from services.common import config, metrics


def runtime_entries(env: dict[str, str]) -> dict[str, Any]:
    """`sender_url` and `metrics` (name -> URL of its /metrics) for runtime.json."""
    host = env.get(config.HOST.name, config.gateway_host())
    port = env.get(config.PORT.name, str(config.gateway_port()))
    sender_port = env.get(config.SENDER_PORT.name, "0")
    sender_url = f"http://{host}:{sender_port}" if sender_port not in ("", "0") else None
    urls: dict[str, str] = {}
    if env.get("LUNA_METRICS_ENABLED", metrics.ENABLED.default).lower() in ("1", "true", "yes"):
        urls["gateway"] = f"http://{host}:{port}/metrics"
        if sender_url:
            urls["sender"] = f"{sender_url}/metrics"
        for service in config.SERVICE_PORTS:
            address = env.get(config.METRICS_ADDRESSES[service].name, "")
            if address:
                urls[service] = f"http://{address}/metrics"
    return {"sender_url": sender_url, "metrics": urls}


async def figures(runtime: dict[str, Any]) -> dict[str, str]:
    """Each endpoint's main figures (or why there are none)."""
    result: dict[str, str] = {}
    timeout = aiohttp.ClientTimeout(total=3)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for name, url in runtime.get("metrics", {}).items():
            try:
                async with session.get(url) as resp:
                    text = await resp.text()
                    ok = resp.status == 200
            except (aiohttp.ClientError, TimeoutError) as exc:
                result[name] = f"unavailable ({type(exc).__name__})"
                continue
            result[name] = metrics.summary(text) if ok else f"unavailable (HTTP {resp.status})"
    return result


async def print_figures(runtime: dict[str, Any]) -> None:
    if runtime.get("sender_url"):
        print(f"sender     {runtime['sender_url']}/2/ws")
    found = await figures(runtime)
    if found:
        print("metrics:")
    for name, line in found.items():
        print(f"  {name:10} {line}")
