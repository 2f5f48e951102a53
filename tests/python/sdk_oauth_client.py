"""Drive xmcp with the Python MCP SDK's own OAuth client.

Usage: python sdk_oauth_client.py MCP_URL

The SDK discovers the authorization server from the 401, registers itself
(dynamic registration), runs PKCE, and calls our redirect handler with the
authorization URL. The handler plays a browser: it submits our consent page
and then the simulated X's login page as served (the first demo user is
preselected), keeping cookies, and captures the redirect back to the SDK's
redirect URI. Then the SDK exchanges the code, calls tools (one of them
reaches X), and refreshes the token after we expire it locally.
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
    """Collects a form's fields the way a browser submits it as served:
    hidden inputs, checked radios and checkboxes, and the first submit button
    (what pressing Enter sends)."""

    def __init__(self) -> None:
        super().__init__()
        self.action = None
        self.fields: list[tuple[str, str]] = []
        self.button: tuple[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input":
            kind = a.get("type", "text")
            if kind == "hidden" or (kind in ("radio", "checkbox") and "checked" in a):
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and self.button is None and a.get("type", "submit") == "submit":
            if "name" in a:
                self.button = (a["name"], a.get("value", ""))


class Browser:
    """Plays the user: follows redirects and submits every page's form as
    served (our consent page, then the simulated X's login page, where the
    first demo user is preselected) until the browser is sent back to the
    client's redirect URI."""

    def __init__(self) -> None:
        self.callback: tuple[str, str | None] | None = None
        self.pages: list[str] = []

    async def redirect_handler(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            url = authorization_url
            resp = await http.get(url)
            location = None
            for _ in range(12):
                if resp.status_code in (301, 302, 303, 307, 308):
                    target = urllib.parse.urljoin(url, resp.headers["location"])
                    if target.startswith(REDIRECT_URI):
                        location = target
                        break
                    url = target
                    resp = await http.get(url)
                    continue
                if resp.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status_code}: {resp.text[:300]}")
                form = FormParser()
                form.feed(resp.text)
                self.pages.append(urllib.parse.urlparse(url).path)
                fields = form.fields + ([form.button] if form.button else [])
                url = urllib.parse.urljoin(url, form.action or "")
                # httpx keeps the consent cookie in the client's jar.
                resp = await http.post(
                    url,
                    content=urllib.parse.urlencode(fields),
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
            if location is None:
                raise RuntimeError(f"never got back to {REDIRECT_URI}; last page {url}")
        query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
        if "code" not in query:
            raise RuntimeError(f"no code in redirect: {location}")
        self.callback = (query["code"][0], query.get("state", [None])[0])
        self.iss = query.get("iss", [None])[0]

    async def callback_handler(self) -> tuple[str, str | None]:
        assert self.callback is not None
        return self.callback


def oauth_provider(
    url: str, client_name: str, browser: Browser, storage: MemoryStorage
) -> OAuthClientProvider:
    """The SDK's OAuth client: a public client registering itself, with
    `browser` playing the user."""
    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name=client_name,
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )


async def main(url: str) -> None:
    browser = Browser()
    storage = MemoryStorage()
    provider = oauth_provider(url, "python-sdk-test", browser, storage)
    report: dict = {}
    async with streamablehttp_client(url, auth=provider) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            report["tools"] = sorted(t.name for t in tools.tools)
            who = await session.call_tool("whoami", {})
            report["whoami"] = who.structuredContent
            me = await session.call_tool("getUsersMe", {})
            report["x_me"] = me.structuredContent
            posted = await session.call_tool("createPosts", {"text": "Hello from the Python SDK"})
            report["posted_is_error"] = posted.isError
            search = await session.call_tool(
                "searchPostsRecent",
                {"query": "from:demo_user python", "post_fields": ["created_at"], "max_results": 10},
            )
            report["search_is_error"] = search.isError
            report["search"] = search.structuredContent
            resources = await session.list_resources()
            report["resources"] = sorted(str(r.uri) for r in resources.resources)
            me_resource = await session.read_resource("x://me")
            report["me_resource"] = json.loads(me_resource.contents[0].text)
            echo = await session.call_tool("echo", {"message": "from python"})
            report["echo"] = echo.content[0].text
            first_access = storage.tokens.access_token
            # Make the SDK believe the access token expired: it must refresh.
            provider.context.token_expiry_time = 1
            again = await session.call_tool("echo", {"message": "after refresh"})
            report["echo_after_refresh"] = again.content[0].text
            report["refreshed"] = storage.tokens.access_token != first_access
    report["iss"] = browser.iss
    report["pages"] = browser.pages
    report["client_id"] = storage.client.client_id if storage.client else None
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
