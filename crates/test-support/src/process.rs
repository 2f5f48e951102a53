//! The real `xmcp` binary as a child process: served over HTTP, or over
//! stdio as an MCP client drives it.

use super::*;

/// A real `xmcp` process on 127.0.0.1, for tests that need process
/// boundaries (restarts, captured logs, the CLI).
pub struct XmcpProcess {
    pub client: Client,
    pub port: u16,
    child: std::process::Child,
}

impl std::ops::Deref for XmcpProcess {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A port that was free a moment ago (the server needs it before it starts,
/// because the port is part of its issuer URL).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl XmcpProcess {
    /// Start `bin serve <args>` on `port`, with stderr going to `stderr`,
    /// and wait (at most 20 s) until `/health` answers.
    pub async fn start(
        bin: &std::path::Path,
        port: u16,
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: std::fs::File,
    ) -> Self {
        Self::start_command(bin, "serve", port, args, envs, stderr, "/health").await
    }

    /// Start `bin sandbox` (the simulated X) on `port` for a server whose
    /// callback is `callback`, with client secret [`X_CLIENT_SECRET`].
    pub async fn start_sandbox(
        bin: &std::path::Path,
        port: u16,
        callback: &str,
        stderr: std::fs::File,
    ) -> Self {
        Self::start_sandbox_with(bin, port, callback, &[], stderr).await
    }

    /// [`Self::start_sandbox`] with more `xmcp sandbox` arguments.
    pub async fn start_sandbox_with(
        bin: &std::path::Path,
        port: u16,
        callback: &str,
        extra: &[&str],
        stderr: std::fs::File,
    ) -> Self {
        let mut args = vec![
            "--client-id",
            X_CLIENT_ID,
            "--client-secret",
            X_CLIENT_SECRET,
            "--redirect-uri",
            callback,
        ];
        args.extend_from_slice(extra);
        Self::start_command(bin, "sandbox", port, &args, &[], stderr, "/2/openapi.json").await
    }

    /// The environment that makes `xmcp serve` use the sandbox at `base`.
    pub fn x_env(base: &str) -> Vec<(String, String)> {
        vec![
            ("XMCP_X_CLIENT_ID".into(), X_CLIENT_ID.into()),
            ("XMCP_X_CLIENT_SECRET".into(), X_CLIENT_SECRET.into()),
            (
                "XMCP_X_AUTHORIZE_URL".into(),
                format!("{base}/i/oauth2/authorize"),
            ),
            ("XMCP_X_TOKEN_URL".into(), format!("{base}/2/oauth2/token")),
            (
                "XMCP_X_REVOKE_URL".into(),
                format!("{base}/2/oauth2/revoke"),
            ),
            ("XMCP_X_API_URL".into(), base.into()),
        ]
    }

    pub(super) async fn start_command(
        bin: &std::path::Path,
        command: &str,
        port: u16,
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: std::fs::File,
        ready_path: &str,
    ) -> Self {
        let mut cmd = std::process::Command::new(bin);
        cmd.arg(command)
            .arg("--port")
            .arg(port.to_string())
            .args(args);
        cmd.env_remove("XMCP_DATABASE_URL")
            .env_remove("XMCP_CONFIG")
            .env_remove("XMCP_LOG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::null()).stderr(stderr);
        let child = cmd.spawn().expect("spawn xmcp");
        let proc = Self {
            client: Client::new(format!("http://127.0.0.1:{port}")),
            port,
            child,
        };
        for _ in 0..400 {
            if let Ok(r) = proc.http.get(proc.url(ready_path)).send().await
                && r.status().is_success()
            {
                return proc;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("xmcp {command} did not become ready on port {port}");
    }

    /// SIGTERM, then wait for the process to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait for xmcp")
    }
}

impl Drop for XmcpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MCP client speaking newline-delimited JSON-RPC to a child process's
/// stdin and stdout (`xmcp stdio`, `xmcp bridge`). Every line the child
/// writes to stdout must be a JSON-RPC message; anything else fails the test.
pub struct StdioMcp {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl StdioMcp {
    /// Spawn `bin args` with `envs` (stderr to `stderr`) and initialize.
    pub async fn start(
        bin: &std::path::Path,
        args: &[&str],
        envs: &[(String, String)],
        stderr: std::fs::File,
    ) -> (Self, Value) {
        let (mut client, _) = Self::spawn(bin, args, envs, stderr.into());
        let init = client.initialize().await;
        (client, init)
    }

    /// Spawn without initializing; with `Stdio::piped()` stderr, the pipe.
    pub fn spawn(
        bin: &std::path::Path,
        args: &[&str],
        envs: &[(String, String)],
        stderr: std::process::Stdio,
    ) -> (Self, Option<tokio::process::ChildStderr>) {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(args)
            .env_remove("XMCP_DATABASE_URL")
            .env_remove("XMCP_CONFIG")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn xmcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let err = child.stderr.take();
        (
            Self {
                child,
                stdin,
                stdout,
                next_id: 1,
            },
            err,
        )
    }

    /// `initialize` and `notifications/initialized`; the initialize result.
    pub async fn initialize(&mut self) -> Value {
        let init = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "xmcp-tests", "version": "0"}
                }),
            )
            .await;
        self.notify("notifications/initialized", json!({})).await;
        init
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    pub(super) async fn send(&mut self, message: Value) {
        use tokio::io::AsyncWriteExt;
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Send a request and return its `result` (panics on a JSON-RPC error;
    /// see [`Self::request_raw`]).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let reply = self.request_raw(method, params).await;
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    /// Send a request and return the whole reply (notifications before it
    /// are skipped), waiting at most 60 s.
    pub async fn request_raw(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let wait = async {
            loop {
                let line = self
                    .stdout
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the MCP server closed stdout");
                let msg: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON-RPC ({e}): {line}"));
                assert_eq!(msg["jsonrpc"], "2.0", "{line}");
                if msg["id"] == json!(id) {
                    return msg;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("no reply to {method} within 60 s"))
    }

    pub async fn call_tool(&mut self, name: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": args}))
            .await
    }

    /// Close stdin (the MCP way to end a stdio session) and wait for exit.
    pub async fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        tokio::time::timeout(std::time::Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server did not exit after stdin closed")
            .unwrap()
    }
}
