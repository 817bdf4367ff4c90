"""``rltf serve``: an OpenAI-compatible endpoint (chat completions, completions, models) for a local model."""
from __future__ import annotations

import ipaddress
import os
import sys

from rltf.cli import add_command
from rltf.cli.common import add_model_args, bounded, load_backend
from rltf.errors import ConfigError
from rltf.serve.server import make_server


def register(sub) -> None:
    p = add_command(sub, "serve")
    add_model_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    p.add_argument("--port", type=bounded(int, ge=0, le=65535), default=8000, help="port (0 picks a free one)")
    p.add_argument("--served-model-name", help="the model name clients send (default: --model)")
    p.add_argument("--api-key-env", metavar="VAR",
                   help="require 'Authorization: Bearer <key>', the key read from this environment variable")
    p.add_argument("--max-queue", type=bounded(int, ge=1), default=256,
                   help="requests waiting for generation; beyond it the server answers 503")
    p.add_argument("--max-batch", type=bounded(int, ge=1), default=32,
                   help="sequences generated together (requests with the same sampling parameters are batched)")
    p.add_argument("--max-connections", type=bounded(int, ge=1), default=64,
                   help="connections served at once (a thread each); beyond it a new connection gets 503 at once")
    p.add_argument("--read-timeout", type=bounded(float, gt=0), default=10.0,
                   help="seconds a client has to send a request's line, headers and body (slow clients are cut off)")
    p.add_argument("--idle-timeout", type=bounded(float, gt=0), default=30.0,
                   help="seconds a kept-alive connection may stay silent before it is closed")
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env, "")
        if not api_key:
            raise ConfigError(f"--api-key-env {args.api_key_env}: that environment variable is empty or not set")
    backend = load_backend(args)
    name = args.served_model_name or args.model
    server = make_server(backend, name, args.host, args.port, api_key=api_key, max_queue=args.max_queue,
                         max_batch=args.max_batch, max_connections=args.max_connections,
                         read_timeout=args.read_timeout, idle_timeout=args.idle_timeout)
    host, port = server.server_address[:2]
    if not is_loopback(args.host) and api_key is None:
        print(f"warning: serving on {args.host}, reachable from other machines, with no API key "
              "(set --api-key-env)", file=sys.stderr, flush=True)
    print(f"serving {name} at http://{host}:{port}/v1 (chat/completions, completions, models"
          f"{'; API key required' if api_key else ''}); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
