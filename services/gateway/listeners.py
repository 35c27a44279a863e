"""The gateway process's other listeners (the Tasks API, the Sender API, Backport 3): each an
aiohttp application served beside the REST one, in the same event loop, started after it and
stopped with it."""

from __future__ import annotations

from aiohttp import web


async def start(
    main: web.Application, key: str, app: web.Application, host: str, port: int
) -> None:
    """Serve `app` on host:port; its runner is kept in `main[key]` for `stop`."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    main[key] = runner


async def stop(main: web.Application, key: str) -> None:
    runner = main.get(key)
    if runner is not None:
        await runner.cleanup()
