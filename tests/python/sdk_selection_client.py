"""Connect the Python MCP SDK's OAuth client to a selection URL.

Usage: python sdk_selection_client.py MCP_URL POST_ID

What a web connector given only a URL does: the SDK discovers the URL's
own protected-resource metadata, registers, authorizes for that resource
(with the scopes its metadata names), then lists and calls tools. Calls a
read-only post tool with POST_ID, then tries to post. Prints one JSON line.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from sdk_oauth_client import Browser, MemoryStorage, oauth_provider


async def main(url: str, post_id: str) -> None:
    browser = Browser()
    storage = MemoryStorage()
    provider = oauth_provider(url, "python-sdk-selection", browser, storage)
    report: dict = {}
    async with streamablehttp_client(url, auth=provider) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            report["tools"] = sorted(t.name for t in tools.tools)
            report["read_only"] = sorted(
                t.name for t in tools.tools if t.annotations and t.annotations.readOnlyHint
            )
            post = await session.call_tool("getPostsById", {"id": post_id})
            report["post_is_error"] = post.isError
            report["post"] = post.structuredContent
            write_attempt = await session.call_tool("createPosts", {"text": "from a read-only URL"})
            report["write_is_error"] = write_attempt.isError
            report["write"] = write_attempt.content[0].text if write_attempt.content else None
    report["scope"] = storage.tokens.scope if storage.tokens else None
    report["pages"] = browser.pages
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
