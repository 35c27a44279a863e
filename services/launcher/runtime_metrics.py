"""Where `luna up` puts the metrics endpoints and the Sender listener, and the figures
`luna status` prints from them."""

from __future__ import annotations

import os
from typing import Any

import aiohttp

from services.common import config, metrics
from services.launcher.embedded import pick_free_port


def _sender_port_setting() -> config.Setting:
    from services.gateway.sender_api import SENDER_PORT

    return SENDER_PORT


def runtime_env(free_ports: bool) -> dict[str, str]:
    """Metrics addresses of the gRPC services and the Sender port, as the children's env;
    under `--free-ports` each one not set explicitly gets a free loopback port."""
    env: dict[str, str] = {}
    for service in config.SERVICE_PORTS:
        key = f"LUNA_{service.upper()}_METRICS_ADDRESS"
        if free_ports and key not in os.environ:
            env[key] = f"127.0.0.1:{pick_free_port()}"
        else:
            env[key] = metrics.metrics_address(service)
    sender = _sender_port_setting()
    if free_ports and sender.name not in os.environ:
        env[sender.name] = str(pick_free_port())
    else:
        env[sender.name] = sender.get()
    return env


def runtime_entries(env: dict[str, str]) -> dict[str, Any]:
    """`sender_url` and `metrics` (name -> URL of its /metrics) for runtime.json."""
    host = env.get("LUNA_HOST", config.gateway_host())
    port = env.get("LUNA_PORT", str(config.gateway_port()))
    sender_port = env.get(_sender_port_setting().name, "0")
    sender_url = f"http://{host}:{sender_port}" if sender_port not in ("", "0") else None
    urls: dict[str, str] = {}
    if env.get("LUNA_METRICS_ENABLED", metrics.ENABLED.default).lower() in ("1", "true", "yes"):
        urls["gateway"] = f"http://{host}:{port}/metrics"
        if sender_url:
            urls["sender"] = f"{sender_url}/metrics"
        for service in config.SERVICE_PORTS:
            address = env.get(f"LUNA_{service.upper()}_METRICS_ADDRESS", "")
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
