"""The `luna` command: up, status, config, models."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from services.common import config, logs


def _up(args: argparse.Namespace) -> int:
    from services.launcher.supervisor import Supervisor

    logs.setup("supervisor")
    if args.port is not None:
        import os

        # Under --cluster this is Envoy's REST port (the gateways get free ports).
        os.environ[config.PORT.name] = str(args.port)
    supervisor = Supervisor(free_ports=args.free_ports)
    if args.cluster:
        from services.launcher.cluster import ClusterSupervisor

        supervisor = ClusterSupervisor()
    try:
        asyncio.run(supervisor.run())
    except asyncio.CancelledError:
        return 130  # interrupted while starting; everything started was stopped
    return 0


def _status(args: argparse.Namespace) -> int:
    from services.launcher.supervisor import status

    return asyncio.run(status(config.data_dir()))


def _config(args: argparse.Namespace) -> int:
    settings = config.declared()
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for s in settings:
            # Defaults under the checkout are shown relative to it, so the table is portable.
            default = s.default.replace(str(config.REPO_ROOT), "<repo>")
            print(f"| `{s.name}` | `{default}` | {s.doc} |")
    else:
        for s in settings:
            print(f"{s.name}={s.get()}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from services.estimator.install import install_models
    from services.estimator.model_repo import models_dir

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    install_models(Path(args.repo) if args.repo else models_dir(), progress=True)
    return 0


def _faces_import(args: argparse.Namespace) -> int:
    from services.faces.importer import import_file

    return asyncio.run(
        import_file(
            Path(args.file),
            account_id=args.account_id,
            list_ids=args.list_id or [],
            version=args.descriptor_version,
            address=args.address,
            batch=args.batch,
        )
    )


def _tasks_watch(args: argparse.Namespace) -> int:
    from services.tasks.watch import watch

    return asyncio.run(watch(args.task_id, url=args.url, interval=args.interval))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="luna", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole platform (embedded NATS and PostgreSQL)")
    up.add_argument("--port", type=int, help="REST port (default LUNA_PORT or 5000)")
    up.add_argument(
        "--free-ports",
        action="store_true",
        help="put the internal gRPC services on free loopback ports instead of 5110..5160",
    )
    up.add_argument(
        "--cluster",
        action="store_true",
        help="a multi-process cluster on loopback: 3 NATS nodes, two of each service, Envoy "
        "in front (services/launcher/cluster.py)",
    )
    up.set_defaults(fn=_up)
    sub.add_parser("status", help="health of each running service").set_defaults(fn=_status)
    cfg = sub.add_parser("config", help="list every LUNA_* setting")
    cfg.add_argument("--markdown", action="store_true", help="as the README's table")
    cfg.set_defaults(fn=_config)
    models = sub.add_parser("models", help="model repository")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    install = models_sub.add_parser("install", help="fetch and convert the models")
    install.add_argument("--repo", help="model repository directory (default LUNA_MODELS_DIR)")
    install.set_defaults(fn=_models)
    tasks = sub.add_parser("tasks", help="follow tasks")
    tasks_sub = tasks.add_subparsers(dest="tasks_command", required=True)
    watch = tasks_sub.add_parser("watch", help="progress bar of a task until it finishes")
    watch.add_argument("task_id", type=int)
    watch.add_argument("--url", help="Tasks API URL (default: the running platform's)")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    watch.set_defaults(fn=_tasks_watch)
    faces = sub.add_parser("faces", help="faces (operators' tools)")
    faces_sub = faces.add_subparsers(dest="faces_command", required=True)
    imp = faces_sub.add_parser(
        "import", help="bulk-load faces with descriptors from a JSON Lines file"
    )
    imp.add_argument("file", help="one face per line: descriptor (base64 float32), user_data...")
    imp.add_argument("--account-id", required=True, help="account that owns the faces")
    imp.add_argument("--list-id", action="append", help="list every face joins (repeatable)")
    imp.add_argument("--descriptor-version", type=int, default=200)
    imp.add_argument("--address", help="faces service host:port (default: the running one's)")
    imp.add_argument("--batch", type=int, default=1000, help="faces per transaction")
    imp.set_defaults(fn=_faces_import)
    args = parser.parse_args(argv)
    sys.exit(args.fn(args))
