"""The echo tool on the official MCP Python SDK (FastMCP), stateless JSON,
behind a bearer check: the alternative `xmcp bench --python` compares with.

The token is compared with XMCP_BENCH_TOKEN in constant time: a cheaper
check than xmcp's (a store lookup), so this flatters the Python server.
"""

import hmac
import os

import uvicorn
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.fastmcp import FastMCP

PORT = int(os.environ["XMCP_BENCH_PORT"])
TOKEN = os.environ["XMCP_BENCH_TOKEN"]
BASE = f"http://127.0.0.1:{PORT}"


class Verifier(TokenVerifier):
    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), TOKEN.encode()):
            return AccessToken(token=token, client_id="bench", scopes=[])
        return None


mcp = FastMCP(
    "bench",
    stateless_http=True,
    json_response=True,
    token_verifier=Verifier(),
    auth=AuthSettings(
        issuer_url=BASE,
        resource_server_url=f"{BASE}/mcp",
        # The verifier above is the whole check.
        validate_token_resource=False,
    ),
    log_level="WARNING",
)


@mcp.tool()
def echo(message: str) -> str:
    """Echo the message."""
    return message


uvicorn.run(
    mcp.streamable_http_app(),
    host="127.0.0.1",
    port=PORT,
    log_level="warning",
    access_log=False,
)
