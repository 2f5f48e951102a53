//! Loading the encryption keyring; creating the local key file on first run.

use crate::config::{Config, KeySource};
use anyhow::Context;
use secrecy::ExposeSecret;
use std::io::Write;
use std::path::Path;
use xmcp_crypto::envelope::{DataKey, Keyring};
use xmcp_store::{SealedColumn, SealedValue};

/// Build the keyring: the active key plus any previous keys (for reading
/// values sealed before a rotation).
pub fn load_keyring(config: &Config) -> anyhow::Result<Keyring> {
    let (active, mut previous) = match &config.encryption_key {
        KeySource::Configured(k) => (DataKey::parse(k.expose_secret())?, Vec::new()),
        KeySource::DataDirFile(path) => {
            let active = load_or_create_key_file(path)?;
            (active, read_key_file(path)?.1)
        }
    };
    if let Some(prev) = &config.previous_encryption_keys {
        for k in prev
            .expose_secret()
            .split([',', '\n'])
            .filter(|k| !k.trim().is_empty())
        {
            previous.push(DataKey::parse(k)?);
        }
    }
    Ok(Keyring::new(active, previous))
}

/// Parse a key file: the first line is the active key, later lines are
/// previous keys kept for reading (during a rotation).
pub fn read_key_file(path: &Path) -> anyhow::Result<(DataKey, Vec<DataKey>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut keys = text.lines().filter(|l| !l.trim().is_empty()).map(|l| {
        DataKey::parse(l).with_context(|| format!("a key in {} is invalid", path.display()))
    });
    let active = keys
        .next()
        .ok_or_else(|| anyhow::anyhow!("{} holds no key", path.display()))??;
    Ok((active, keys.collect::<Result<_, _>>()?))
}

/// Atomically replace the key file with `keys` (first = active), mode 0600.
pub fn write_key_file(path: &Path, keys: &[&DataKey]) -> anyhow::Result<()> {
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    for k in keys {
        f.write_all(k.export().expose_secret().as_bytes())?;
        f.write_all(b"\n")?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// A new key with a random id.
pub fn new_data_key() -> anyhow::Result<DataKey> {
    Ok(DataKey::generate(format!("k{}", hex_id()))?)
}

/// The AAD the owner of a sealed value bound it with ([`SealedColumn::aad`]),
/// or `None` for a local-state value that is not sealed (`local_user` names
/// a user). The rotation test in `crates/xmcp/tests` seals as the owners do
/// and fails if a value is not re-sealed.
fn aad_of(value: &SealedValue) -> Option<String> {
    match value.column {
        SealedColumn::LocalState if !value.key.starts_with(crate::bridge::CREDENTIALS_PREFIX) => {
            None
        }
        column => Some(column.aad(&value.key)),
    }
}

/// Where a sealed value is, for an operator (never the value).
fn place_of(value: &SealedValue) -> String {
    let short = |k: &str| k.chars().take(12).collect::<String>();
    match value.column {
        SealedColumn::UpstreamAccess => format!("the upstream access token of user {}", value.key),
        SealedColumn::UpstreamRefresh => {
            format!("the upstream refresh token of user {}", value.key)
        }
        SealedColumn::SigningKey => format!("JWT signing key {}", value.key),
        SealedColumn::PendingVerifier => format!(
            "the upstream PKCE verifier of pending authorization {}… (expires within minutes)",
            short(&value.key)
        ),
        SealedColumn::RefreshSuccessor => format!(
            "the successor of rotated refresh token {}… (kept for minutes)",
            short(&value.key)
        ),
        SealedColumn::LocalState => format!("local value {}", value.key),
        SealedColumn::OnceResult => format!(
            "the result of write {}… made once (kept for its idempotency window)",
            short(&value.key)
        ),
    }
}

/// A sealed value that no key of the keyring opens.
#[derive(Debug)]
pub struct Unreadable {
    /// Where it is (never the value).
    pub place: String,
    /// The key id it names, if it names one.
    pub key_id: Option<String>,
    pub error: xmcp_crypto::envelope::EnvelopeError,
}

/// What [`reseal_all`] did.
#[derive(Debug, Default)]
pub struct ResealReport {
    /// Values re-sealed under the active key.
    pub resealed: usize,
    /// Rows they are in.
    pub rows: usize,
    /// Values already sealed under it.
    pub current: usize,
    /// Values left as they were.
    pub unreadable: Vec<Unreadable>,
    /// Values rewritten by someone else on every pass: run again.
    pub busy: usize,
}

impl ResealReport {
    /// Ids of keys still needed to read what was left as it was: keys of
    /// the keyring under which a value failed to open (its row or binding
    /// did not match). Values naming keys the keyring lacks are unreadable
    /// with or without this rotation.
    pub fn keys_still_needed(&self) -> std::collections::BTreeSet<String> {
        self.unreadable
            .iter()
            .filter(|u| !matches!(u.error, xmcp_crypto::envelope::EnvelopeError::UnknownKey(_)))
            .filter_map(|u| u.key_id.clone())
            .collect()
    }
}

/// Re-seal everything sealed with the data key under the keyring's active
/// key: upstream (X) tokens, JWT signing keys, the bridge's credentials,
/// pending authorizations' upstream PKCE verifiers and the successors of
/// rotated refresh tokens. Each value is replaced only if it is unchanged
/// (a server refreshing a user's X tokens meanwhile keeps its write); such
/// values are looked at again, as they may have been sealed under an older
/// key. A value that does not open is reported and left as it is.
pub async fn reseal_all(
    store: &dyn xmcp_store::Store,
    keyring: &Keyring,
) -> anyhow::Result<ResealReport> {
    let mut report = ResealReport::default();
    let mut rows = std::collections::HashSet::new();
    let mut todo = store.list_sealed().await?;
    // A value rewritten meanwhile is read again; a few passes settle it.
    for _ in 0..3 {
        let mut raced = std::collections::HashSet::new();
        for value in &todo {
            let Some(aad) = aad_of(value) else {
                if Keyring::key_id_of(&value.sealed).is_some() {
                    report.unreadable.push(Unreadable {
                        place: place_of(value),
                        key_id: Keyring::key_id_of(&value.sealed).map(str::to_owned),
                        error: xmcp_crypto::envelope::EnvelopeError::Decrypt,
                    });
                }
                continue;
            };
            match keyring.reseal(&value.sealed, aad.as_bytes()) {
                Ok(None) => report.current += 1,
                Ok(Some(resealed)) => {
                    if store.replace_sealed(value, &resealed).await? {
                        report.resealed += 1;
                        rows.insert((value.column.table(), value.key.clone()));
                    } else {
                        raced.insert((value.column, value.key.clone()));
                    }
                }
                Err(error) => report.unreadable.push(Unreadable {
                    place: place_of(value),
                    key_id: Keyring::key_id_of(&value.sealed).map(str::to_owned),
                    error,
                }),
            }
        }
        report.busy = raced.len();
        if raced.is_empty() {
            break;
        }
        todo = store
            .list_sealed()
            .await?
            .into_iter()
            .filter(|v| raced.contains(&(v.column, v.key.clone())))
            .collect();
    }
    report.rows = rows.len();
    Ok(report)
}

/// Read the key file, or create it (mode 0600, parent 0700) with a new key.
pub fn load_or_create_key_file(path: &Path) -> anyhow::Result<DataKey> {
    match std::fs::read_to_string(path) {
        Ok(_) => {
            if let Some(mode) = shared_mode(path) {
                tracing::warn!(
                    path = %path.display(),
                    mode = %format!("{mode:o}"),
                    "other users of this machine may read the encryption key file: chmod 600 it"
                );
            }
            Ok(read_key_file(path)?.0)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir)?;
            }
            let key = new_data_key()?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(path) {
                Ok(mut f) => {
                    f.write_all(key.export().expose_secret().as_bytes())?;
                    f.write_all(b"\n")?;
                    f.sync_all()?;
                    tracing::info!(path = %path.display(), key_id = key.id(), "created a new encryption key");
                    Ok(key)
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_key_file(path)
                }
                Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
            }
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The permission bits of `path` when its group or other users have any
/// (Unix); `None` when only its owner does, or elsewhere.
fn shared_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn hex_id() -> String {
    xmcp_crypto::random_bytes::<3>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Create a directory readable only by its owner (on Unix).
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// What cannot be re-sealed is left as it was and named, and the keys it
    /// needs are reported, unless the keyring never had them.
    #[tokio::test]
    async fn values_that_do_not_open_are_reported_with_the_keys_they_need() {
        let store = xmcp_store::connect("sqlite::memory:", 1).await.unwrap();
        let old = DataKey::generate("old").unwrap();
        let old_ring = Keyring::new(
            DataKey::parse(old.export().expose_secret()).unwrap(),
            vec![],
        );
        let gone = Keyring::new(DataKey::generate("gone").unwrap(), vec![]);
        let put = |name: &'static str, value: String| {
            let store = store.clone();
            async move { store.put_local_state(name, &value, 1).await.unwrap() }
        };
        put(
            "bridge:https://a.example/mcp",
            old_ring.seal(b"a", b"bridge:https://a.example/mcp"),
        )
        .await;
        // Sealed with another binding than the bridge's: not this one's to open.
        put(
            "bridge:https://b.example/mcp",
            old_ring.seal(b"b", b"elsewhere"),
        )
        .await;
        // A name whose values nobody here seals, yet sealed.
        put("someone_else", old_ring.seal(b"c", b"someone_else")).await;
        // Under a key this keyring never had.
        put(
            "bridge:https://c.example/mcp",
            gone.seal(b"d", b"bridge:https://c.example/mcp"),
        )
        .await;
        // Not sealed at all.
        put("local_user", "u_123".into()).await;

        let new_ring = Keyring::new(DataKey::generate("new").unwrap(), vec![old]);
        let report = reseal_all(store.as_ref(), &new_ring).await.unwrap();
        assert_eq!(
            (report.resealed, report.rows, report.current, report.busy),
            (1, 1, 0, 0)
        );
        let places: Vec<&str> = report.unreadable.iter().map(|u| u.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "local value bridge:https://b.example/mcp",
                "local value bridge:https://c.example/mcp",
                "local value someone_else",
            ]
        );
        assert_eq!(
            report.keys_still_needed().into_iter().collect::<Vec<_>>(),
            ["old"]
        );
        let a = store
            .get_local_state("bridge:https://a.example/mcp")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Keyring::key_id_of(&a), Some("new"));
        assert_eq!(
            store
                .get_local_state("local_user")
                .await
                .unwrap()
                .as_deref(),
            Some("u_123")
        );
        // A second run has nothing left to do but report the same.
        let again = reseal_all(store.as_ref(), &new_ring).await.unwrap();
        assert_eq!(
            (again.resealed, again.current, again.unreadable.len()),
            (0, 1, 3)
        );
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("encryption.key");
        let a = load_or_create_key_file(&path).unwrap();
        let b = load_or_create_key_file(&path).unwrap();
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            assert_eq!(shared_mode(&path), None);
            let dir_mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(dir_mode, 0o700);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(shared_mode(&path), Some(0o644));
        }
    }
}
