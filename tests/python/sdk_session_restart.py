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
from mcp.client.streamable_http import streamablehttp_client

from sdk_oauth_client import Browser, MemoryStorage, oauth_provider


async def main(url: str) -> None:
    browser = Browser()
    storage = MemoryStorage()
    provider = oauth_provider(url, "python-sdk-session-test", browser, storage)
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
