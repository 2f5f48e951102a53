// Drive xmcp with the official MCP TypeScript SDK's own OAuth client.
//
// Usage: node sdk_oauth_client.mjs MCP_URL   (from this directory, after `npm ci`)
//
// The SDK's transport meets the 401, discovers the authorization server,
// registers itself (dynamic registration), runs PKCE with a state, and hands
// us the authorization URL. We play the browser: submit our consent page and
// then the simulated X's login page as served (the first demo user is
// preselected), keeping cookies, and catch the redirect back to the
// client's redirect URI. Then the SDK exchanges the code, calls tools (some
// reach X), reads a resource, refreshes its token when the server refuses
// the old one, and ends its session if the server gave it one.
// Prints one JSON line describing what happened; exits non-zero on failure.

import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const REDIRECT_URI = "http://127.0.0.1:53683/callback";

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function unescapeHtml(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === "#") {
      const hex = name[1] === "x" || name[1] === "X";
      return String.fromCodePoint(parseInt(name.slice(hex ? 2 : 1), hex ? 16 : 10));
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function attributes(text) {
  const found = {};
  for (const m of text.matchAll(/([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g)) {
    found[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return found;
}

// What a browser submits for a page's form as served: hidden inputs, checked
// radios and checkboxes, and the first submit button (what pressing Enter
// sends), as the Python test's browser does.
function parseForm(html) {
  let action;
  const fields = [];
  let button;
  let sawSubmit = false;
  for (const m of html.matchAll(/<(form|input|button)\b([^>]*)>/gi)) {
    const tag = m[1].toLowerCase();
    const a = attributes(m[2]);
    if (tag === "form") {
      action = a.action;
    } else if (tag === "input") {
      const kind = (a.type ?? "text").toLowerCase();
      if (kind === "hidden" || ((kind === "radio" || kind === "checkbox") && "checked" in a)) {
        fields.push([a.name, a.value ?? ""]);
      }
    } else if (!sawSubmit && (a.type ?? "submit").toLowerCase() === "submit") {
      sawSubmit = true;
      if ("name" in a) button = [a.name, a.value ?? ""];
    }
  }
  return { action, fields: button ? [...fields, button] : fields };
}

// Plays the user: follows redirects and submits every page's form until the
// browser is sent back to the client's redirect URI.
class Browser {
  constructor() {
    this.pages = [];
    this.cookies = new Map();
  }

  async fetch(url, init = {}) {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const resp = await fetch(url, {
      ...init,
      redirect: "manual",
      headers: { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) },
    });
    for (const set of resp.headers.getSetCookie()) {
      const pair = set.split(";")[0];
      const eq = pair.indexOf("=");
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
    return resp;
  }

  async authorize(authorizationUrl) {
    let url = String(authorizationUrl);
    let resp = await this.fetch(url);
    for (let step = 0; step < 12; step++) {
      if ([301, 302, 303, 307, 308].includes(resp.status)) {
        const target = new URL(resp.headers.get("location"), url).href;
        if (target.startsWith(REDIRECT_URI)) {
          const query = new URL(target).searchParams;
          if (!query.get("code")) throw new Error(`no code in redirect: ${target}`);
          return { code: query.get("code"), state: query.get("state"), iss: query.get("iss") };
        }
        url = target;
        resp = await this.fetch(url);
        continue;
      }
      const text = await resp.text();
      if (resp.status !== 200) throw new Error(`${url}: HTTP ${resp.status}: ${text.slice(0, 300)}`);
      this.pages.push(new URL(url).pathname);
      const form = parseForm(text);
      url = new URL(form.action ?? "", url).href;
      resp = await this.fetch(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(form.fields).toString(),
      });
    }
    throw new Error(`never got back to ${REDIRECT_URI}; last page ${url}`);
  }
}

// The SDK's OAuth client provider: a public client registering itself, with
// everything kept in memory and `browser` playing the user.
class Provider {
  constructor(browser) {
    this.browser = browser;
    this.client = undefined;
    this.saved = undefined;
    this.tokenSaves = 0;
    this.sentState = undefined;
    this.callback = undefined;
  }
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata() {
    return {
      client_name: "typescript-sdk-test",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    this.sentState = randomBytes(16).toString("hex");
    return this.sentState;
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
    this.tokenSaves += 1;
  }
  async redirectToAuthorization(url) {
    this.authorizationUrl = new URL(url);
    this.callback = await this.browser.authorize(url);
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

function structured(result) {
  if (result.isError) throw new Error(`tool failed: ${JSON.stringify(result)}`);
  return result.structuredContent;
}

async function main(mcpUrl) {
  const url = new URL(mcpUrl);
  const browser = new Browser();
  const provider = new Provider(browser);
  const client = new Client({ name: "typescript-sdk-test", version: "1.0.0" });
  let transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  const report = {};
  try {
    await client.connect(transport);
    throw new Error("the first connection was not asked to authorize");
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  report.state_returned = provider.callback.state === provider.sentState;
  report.authorization_params = Object.fromEntries(
    ["response_type", "code_challenge_method", "resource"].map((k) => [
      k,
      provider.authorizationUrl.searchParams.get(k),
    ]),
  );
  await transport.finishAuth(provider.callback.code);
  transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await client.connect(transport);
  report.session = transport.sessionId ?? null;

  const tools = await client.listTools();
  report.tools = tools.tools.map((t) => t.name).sort();
  report.whoami = structured(await client.callTool({ name: "whoami", arguments: {} }));
  report.x_me = structured(await client.callTool({ name: "getUsersMe", arguments: {} }));
  const posted = await client.callTool({
    name: "createPosts",
    arguments: { text: "Hello from the TypeScript SDK" },
  });
  report.posted_is_error = posted.isError ?? false;
  const me = await client.readResource({ uri: "x://me" });
  report.me_resource = JSON.parse(me.contents[0].text);
  const echo = await client.callTool({ name: "echo", arguments: { message: "from typescript" } });
  report.echo = echo.content[0].text;

  // The server refuses the access token (as when it expired): the SDK
  // refreshes with its refresh token and sends the request again.
  const first = provider.saved.access_token;
  provider.saved = { ...provider.saved, access_token: "xmcp_at_no-longer-valid" };
  const again = await client.callTool({ name: "echo", arguments: { message: "after refresh" } });
  report.echo_after_refresh = again.content[0].text;
  report.refreshed =
    provider.tokenSaves === 2 &&
    provider.saved.access_token !== first &&
    provider.saved.access_token !== "xmcp_at_no-longer-valid";
  report.session_after_refresh = transport.sessionId ?? null;

  if (transport.sessionId) {
    await transport.terminateSession();
    report.session_after_end = transport.sessionId ?? null;
  }
  await client.close();
  report.iss = provider.callback.iss;
  report.pages = browser.pages;
  report.client_id = provider.client?.client_id ?? null;
  console.log(JSON.stringify(report));
}

main(process.argv[2]).catch((e) => {
  console.error(e);
  process.exit(1);
});
