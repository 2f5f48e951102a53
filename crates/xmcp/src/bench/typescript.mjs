// The echo tool on the official MCP TypeScript SDK, stateless JSON, behind a
// bearer check: the alternative `xmcp bench --typescript` compares with.
//
// Run from a directory where `npm install @modelcontextprotocol/sdk` was run.
// Stateless as the SDK documents it: a server and a transport per request.
// The token is compared with XMCP_BENCH_TOKEN in constant time: a cheaper
// check than xmcp's (a store lookup), so this flatters the Node server.

import http from "node:http";
import { timingSafeEqual } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

const PORT = Number(process.env.XMCP_BENCH_PORT);
const EXPECTED = Buffer.from(`Bearer ${process.env.XMCP_BENCH_TOKEN}`);

function authorized(header) {
  if (typeof header !== "string") return false;
  const given = Buffer.from(header);
  return given.length === EXPECTED.length && timingSafeEqual(given, EXPECTED);
}

function newServer() {
  const server = new McpServer({ name: "bench", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Echo the message.", inputSchema: { message: z.string() } },
    async ({ message }) => ({ content: [{ type: "text", text: message }] }),
  );
  return server;
}

http
  .createServer(async (req, res) => {
    if (req.url !== "/mcp") {
      res.writeHead(404).end();
      return;
    }
    if (!authorized(req.headers.authorization)) {
      res.writeHead(401, { "www-authenticate": "Bearer" }).end();
      return;
    }
    const server = newServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on("close", () => {
      transport.close();
      server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res);
    } catch {
      if (!res.headersSent) res.writeHead(500).end();
    }
  })
  .listen(PORT, "127.0.0.1");
