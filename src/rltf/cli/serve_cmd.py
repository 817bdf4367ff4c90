"""``rltf serve``: an OpenAI-compatible chat-completions endpoint for a local model."""
from __future__ import annotations

from rltf.cli.common import add_model_args, bounded, load_backend


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a local model as an OpenAI-compatible chat endpoint")
    add_model_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    p.add_argument("--port", type=bounded(int, ge=0, le=65535), default=8000, help="port (0 picks a free one)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rltf.serve.server import make_server

    backend = load_backend(args)
    server = make_server(backend, args.model, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"serving {args.model} at http://{host}:{port}/v1 (chat/completions, models); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
