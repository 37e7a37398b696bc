"""``netra-supervisor serve``: the read-only views in a browser tab, through textual-serve.

Each browser tab gets its own process running the command built here (``watch``, or
``history browse`` with ``--history``) under Textual's web driver; this server only
relays the terminal over a websocket. It binds to loopback unless told otherwise: the
page shows test output (messages, tracebacks), so a non-loopback host needs
``--allow-remote``, and then every request must carry a random token, printed once at
start in the URL. The first request that carries it gets a cookie, so the page's
websocket and static files need no token in their URLs. Ctrl-C (or SIGTERM) closes every
tab's websocket and ends every process the server started.

textual-serve (and aiohttp under it) is imported only by this module, which only
``serve`` imports.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import secrets
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

TOKEN_PARAM = "token"
TOKEN_COOKIE = "netra_serve_token"
STOP_WAIT = 3.0  # seconds a served app gets to quit before it is killed


class ServeError(ValueError):
    """A bad host or a port in use: one line for the user, exit 2."""


def watch_argv(run: int | None, db: str | Path) -> list[str]:
    """The command each browser tab runs: ``watch`` of RUN from the history at ``db``."""
    argv = [sys.executable, "-m", "supervisor", "watch"]
    if run is not None:
        argv.append(str(run))
    return [*argv, "--db", str(db)]


def browse_argv(run: int | None, db: str | Path) -> list[str]:
    """``--history``: the history screen on its own (``history browse``)."""
    argv = [sys.executable, "-m", "supervisor", "history", "browse"]
    if run is not None:
        argv.append(str(run))
    return [*argv, "--db", str(db)]


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address; any other name or address is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    if not is_loopback(host) and not allow_remote:
        raise ServeError(
            f"serve: --host {host} is not a loopback address and the page shows test output;"
            " add --allow-remote (a token is then required) or use --host 127.0.0.1"
        )


def public_url(host: str, port: int) -> str:
    """The address to print: an unspecified host (0.0.0.0, ::) is named by this machine."""
    shown = host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        shown = socket.getfqdn()
    elif address is not None and address.version == 6:
        shown = f"[{host}]"
    return f"http://{shown}:{port}"


def serve(
    command: Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    allow_remote: bool = False,
    out: TextIO | None = None,
) -> int:
    """Serve ``command`` until Ctrl-C or SIGTERM; 0, or ServeError for a bad host/port."""
    check_host(host, allow_remote)
    out = out or sys.stdout
    token = secrets.token_urlsafe(24) if not is_loopback(host) else None
    server = _Server(shlex.join(command), host=host, port=port, token=token, out=out)
    try:
        server.serve()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"serve: port {port} on {host} is in use; pass another --port"
            ) from None
        raise ServeError(f"serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


class _Service(AppService):
    """One tab's process, in a session of its own: a Ctrl-C in the terminal that runs
    ``serve`` reaches the server only, which then stops every app itself (quit, then
    kill), instead of each app dying of the signal with a traceback."""

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        environment = self._build_environment(width=width, height=height)
        self._process = process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process


class _Server(Server):
    """textual-serve's server with a token check, our start line, and a clean stop."""

    def __init__(self, command: str, *, host: str, port: int, token: str | None, out: TextIO):
        super().__init__(f"exec {command}", host=host, port=port, title="netra-supervisor")
        self.token = token
        self.out = out
        self.url = public_url(host, port)
        self._sockets: set[Any] = set()
        self._services: set[Any] = set()

    def serve(self, debug: bool = False) -> None:
        """textual-serve's ``serve`` on a socket bound first: a port in use fails here,
        before anything is printed, and Ctrl-C / SIGTERM stop the server gracefully."""
        import signal

        from aiohttp.web_runner import GracefulExit

        def stop() -> None:
            raise GracefulExit()

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family)
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        try:
            web.run_app(
                self._make_app(),
                sock=sock,
                handle_signals=False,
                loop=loop,
                print=lambda *args: None,
                shutdown_timeout=STOP_WAIT,
            )
        finally:
            sock.close()
            if not loop.is_closed():
                loop.close()

    def initialize_logging(self) -> None:
        """Warnings only: aiohttp's access log would write every URL, token included."""
        import logging

        logging.basicConfig(level="WARNING", format="%(name)s: %(message)s")

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        if self.token is not None:
            app.middlewares.append(self._check_token)
        return app

    @web.middleware
    async def _check_token(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """403 without the token (in the URL, or the cookie its first use set)."""
        allowed, from_query = self._token_ok(request)
        if not allowed:
            raise web.HTTPForbidden(
                text="403: this page needs the token that netra-supervisor serve printed"
                " at its start (open the URL it printed)\n"
            )
        response: web.StreamResponse = await handler(request)
        if from_query and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, str(self.token), httponly=True, samesite="Strict")
        return response

    async def on_startup(self, app: web.Application) -> None:
        url = self.url + "/"
        if self.token is not None:
            url += f"?{TOKEN_PARAM}={self.token}"
        print(f"netra-supervisor serve: open {url}  (Ctrl-C stops)", file=self.out, flush=True)

    def _token_ok(self, request: web.Request) -> tuple[bool, bool]:
        """(allowed, from the query): the token in the URL, or the cookie it set."""
        assert self.token is not None
        given = request.query.get(TOKEN_PARAM)
        if given is not None and hmac.compare_digest(given, self.token):
            return True, True
        cookie = request.cookies.get(TOKEN_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, self.token), False

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page names its websocket by the address the browser used (a remote
        browser cannot reach ``0.0.0.0``)."""
        self.public_url = f"{request.scheme}://{request.host}"
        response: web.StreamResponse = await super().handle_index(request)
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's handler, with every websocket and process kept, so a stop
        can close and end them."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: _Service | None = None
        self._sockets.add(websocket)
        try:
            await websocket.prepare(request)
            service = _Service(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,  # type: ignore[arg-type]  # as textual-serve's own
                download_manager=self.download_manager,
                debug=self.debug,
            )
            self._services.add(service)
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        finally:
            self._sockets.discard(websocket)
            if service is not None:
                await self._stop_service(service)
        return websocket

    async def _stop_service(self, service: Any) -> None:
        """Ask the app to quit; kill it if it has not within STOP_WAIT."""
        try:
            await asyncio.wait_for(service.stop(), STOP_WAIT)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass
        process = service._process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        self._services.discard(service)

    async def on_shutdown(self, app: web.Application) -> None:
        for websocket in list(self._sockets):
            await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopped")
        await asyncio.gather(*(self._stop_service(s) for s in list(self._services)))
