"""Drive xmcp with the Python MCP SDK's own OAuth client.

Usage: python sdk_oauth_client.py MCP_URL

The SDK discovers the authorization server from the 401, registers itself
(dynamic registration), runs PKCE, and calls our redirect handler with the
authorization URL. The handler plays a browser: it loads the consent page,
submits the form as served (a demo user is preselected) with its cookie, and
captures the redirect back to the SDK's redirect URI. Then the SDK exchanges
the code, calls tools, and refreshes the token after we expire it locally.
Prints one JSON line describing what happened; exits non-zero on failure.
"""

import asyncio
import html.parser
import json
import sys
import urllib.parse

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:53682/callback"


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class FormParser(html.parser.HTMLParser):
    """Collects the consent form's fields the way a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.action = None
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input":
            kind = a.get("type", "text")
            if kind == "hidden" or (kind == "radio" and "checked" in a):
                self.fields.append((a["name"], a.get("value", "")))


class Browser:
    def __init__(self) -> None:
        self.callback: tuple[str, str | None] | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            page = await http.get(authorization_url)
            if page.status_code != 200:
                raise RuntimeError(f"consent page: HTTP {page.status_code}: {page.text[:300]}")
            form = FormParser()
            form.feed(page.text)
            fields = form.fields + [("action", "approve")]
            target = urllib.parse.urljoin(authorization_url, form.action)
            # httpx keeps the consent cookie in the client's jar.
            resp = await http.post(
                target,
                content=urllib.parse.urlencode(fields),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            if resp.status_code != 303:
                raise RuntimeError(f"consent submit: HTTP {resp.status_code}: {resp.text[:300]}")
            location = resp.headers["location"]
        query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
        if "code" not in query:
            raise RuntimeError(f"no code in redirect: {location}")
        self.callback = (query["code"][0], query.get("state", [None])[0])
        self.iss = query.get("iss", [None])[0]

    async def callback_handler(self) -> tuple[str, str | None]:
        assert self.callback is not None
        return self.callback


async def main(url: str) -> None:
    browser = Browser()
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="python-sdk-test",
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
    async with streamablehttp_client(url, auth=provider) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            report["tools"] = sorted(t.name for t in tools.tools)
            who = await session.call_tool("whoami", {})
            report["whoami"] = who.structuredContent
            echo = await session.call_tool("echo", {"message": "from python"})
            report["echo"] = echo.content[0].text
            first_access = storage.tokens.access_token
            # Make the SDK believe the access token expired: it must refresh.
            provider.context.token_expiry_time = 1
            again = await session.call_tool("echo", {"message": "after refresh"})
            report["echo_after_refresh"] = again.content[0].text
            report["refreshed"] = storage.tokens.access_token != first_access
    report["iss"] = browser.iss
    report["client_id"] = storage.client.client_id if storage.client else None
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
