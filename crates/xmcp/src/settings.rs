//! Which settings each command takes. The settings themselves (flag,
//! variable, TOML key, help) are declared once, by group, in
//! `xmcp_server::config::settings`; a command flattens the groups it uses,
//! so that it takes, and lists in `--help`, only those:
//!
//! * [`StoreArgs`]: configuration file, logging, database and encryption
//!   keys. Every command that opens the store (`admin`, `bridge`).
//! * [`LocalSettings`]: with the store, how X is reached and which of its
//!   operations are tools: the local commands (`login`, `logout`,
//!   `status`, `stdio`).
//! * [`ServeArgs`]: every setting, all of [`Settings`] (`serve`,
//!   `check-config`, `rotate-key`, `rotate-signing-key`).
//!
//! Each flag also reads an `XMCP_*` variable; both override the TOML file
//! given by `--config`, which may hold any setting but the secrets (their
//! `*_file` settings instead).

use clap::Args;
use std::path::PathBuf;
use xmcp_server::Config;
use xmcp_server::config::{
    KeySettings, LogSettings, Settings, StoreSettings, ToolsSettings, XSettings,
};

// No `Debug` on these types: they hold the raw encryption key, secrets and a
// database URL that may carry a password.

/// The configuration file, under every command's flags.
#[derive(Args)]
pub struct ConfigFile {
    /// TOML configuration file.
    #[arg(long, global = true, env = "XMCP_CONFIG", help_heading = "General")]
    config: Option<PathBuf>,
}

/// Where state lives and how it is sealed. Global, so that they may also
/// follow a subcommand: `xmcp admin users --data-dir DIR`.
#[derive(Args)]
pub struct StoreArgs {
    #[command(flatten)]
    file: ConfigFile,
    #[command(flatten)]
    log: LogSettings,
    #[command(flatten)]
    store: StoreSettings,
    #[command(flatten)]
    keys: KeySettings,
}

/// Every setting: `serve` and the commands that must read exactly what it
/// reads.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    file: ConfigFile,
    #[command(flatten)]
    settings: Settings,
}

/// The settings of the local commands: the store and X.
#[derive(Args)]
pub struct LocalSettings {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    x: XSettings,
    #[command(flatten)]
    tools: ToolsSettings,
}

impl ConfigFile {
    /// The configuration file, then `overrides` over it, validated.
    fn resolve(&self, overrides: Settings) -> anyhow::Result<Config> {
        let file = self
            .config
            .as_deref()
            .map(Settings::from_file)
            .transpose()?;
        Ok(Config::resolve(file, overrides)?)
    }
}

impl StoreArgs {
    /// The flags and variables this command takes, as a layer.
    fn settings(&self) -> Settings {
        Settings {
            log: self.log.clone(),
            store: self.store.clone(),
            keys: self.keys.clone(),
            ..Default::default()
        }
    }

    /// The configuration of a command that only opens the store: nobody
    /// signs in here, so no way to sign in is required.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut s = self.settings();
        s.x.demo = Some(true);
        // Nothing is served: the demo's exposure check has nothing to say
        // about the host or public URL of a configuration file.
        s.server.demo_public = Some(true);
        self.file.resolve(s)
    }
}

impl ServeArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        self.file.resolve(self.settings.clone())
    }
}

impl LocalSettings {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut s = Settings {
            x: self.x.clone(),
            tools: self.tools.clone(),
            ..self.store.settings()
        };
        // The local commands listen on loopback only, whatever a
        // configuration file says about the HTTP server.
        s.server.demo_public = Some(true);
        self.store.file.resolve(s)
    }
}
