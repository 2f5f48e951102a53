"""A stateful MCP session outlives the server process: the Python MCP SDK
keeps one session open while the server restarts.

Usage: python sdk_session_restart.py MCP_URL

Signs in as sdk_oauth_client.py does, opens a session, calls a tool, then
prints {"session": ID} and waits for a line on stdin: meanwhile the test
stops the server and starts a new process on the same address and
database. Then it calls tools again in the same session, and prints one
JSON line with what happened; exits non-zero on failure.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientMetadata

from sdk_oauth_client import REDIRECT_URI, Browser, MemoryStorage


async def main(url: str) -> None:
    browser = Browser()
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="python-sdk-session-test",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    report: dict = {}
    async with streamablehttp_client(url, auth=provider) as (read, write, session_id):
        async with ClientSession(read, write) as session:
            await session.initialize()
            who = await session.call_tool("whoami", {})
            report["whoami_before"] = who.structuredContent
            report["session_before"] = session_id()
            print(json.dumps({"session": session_id()}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            echo = await session.call_tool("echo", {"message": "after restart"})
            report["echo_after"] = echo.content[0].text
            report["echo_after_is_error"] = echo.isError
            who = await session.call_tool("whoami", {})
            report["whoami_after"] = who.structuredContent
            tools = await session.list_tools()
            report["tools_after"] = len(tools.tools)
            report["session_after"] = session_id()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
