"""uvicorn's HTTP/1.1 + prior-knowledge h2c protocol, with bodyless HTTP/2 requests completed.

`mlflow server` runs uvicorn, and uvicorn 0.54 serves cleartext HTTP/2 next to HTTP/1.1 through the zttp
package (`--http zttp --http2`: uvicorn/protocols/http/auto_zttp_impl.py sniffs the connection preface). Since
zttp 0.0.22 a request whose HEADERS frame ends the stream (every GET) arrives as one `Request` event with
`end_stream` set and no `EndOfMessage` after it (Kludex/uvicorn#3063). uvicorn 0.54's HTTP/1.1 path reads
`end_stream` (zttp_impl.py); its HTTP/2 path does not (zttp_h2_impl.py `handle_request`), so an application
that awaits the request body, as MLflow's Flask routes behind FastAPI's WSGI bridge do, waits forever on every
HTTP/2 GET. Measured: `curl --http2-prior-knowledge .../api/2.0/mlflow/experiments/search` hangs, POSTs and
MLflow's native FastAPI artifact routes do not.

`AutoH2cProtocol` is uvicorn's own protocol with that one step added; the entrypoint selects it with
`--uvicorn-opts "--http infra.mlflow_server.h2c:AutoH2cProtocol"` (uvicorn takes a protocol class as an
import string: uvicorn/config.py `Config.load`). The GCP contract test sends HTTP/2 GETs, POSTs and 40 MiB
bodies through it; drop this module once uvicorn's HTTP/2 path reads `end_stream` itself.
"""

from typing import Any

import zttp
from uvicorn.protocols.http.auto_zttp_impl import AutoZttpProtocol
from uvicorn.protocols.http.zttp_h2_impl import ZttpH2Protocol
from uvicorn.protocols.http.zttp_impl import ZttpProtocol

IMPORT_STRING = "infra.mlflow_server.h2c:AutoH2cProtocol"


class H2cProtocol(ZttpH2Protocol):
    """uvicorn's HTTP/2 protocol; a request that ends with its headers has no body to wait for."""

    def handle_request(self, event: zttp.Request) -> None:
        super().handle_request(event)
        cycle = self.cycles.get(event.stream_id)
        # The application task was only scheduled: it sees the body complete from its first receive().
        if event.end_stream and cycle is not None:
            cycle.more_body = False
            cycle.message_event.set()


class AutoH2cProtocol(AutoZttpProtocol):
    """HTTP/1.1 or, after the HTTP/2 connection preface, `H2cProtocol`, on one cleartext port."""

    def _switch(self, http2: bool, initial_data: bytes = b"") -> None:
        protocol_class: Any = H2cProtocol if http2 else ZttpProtocol
        protocol = protocol_class(
            config=self.config, server_state=self.server_state, app_state=self.app_state, _loop=self.loop
        )
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if initial_data:
            protocol.data_received(initial_data)
