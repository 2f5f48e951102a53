//! Loading the encryption keyring; creating the local key file on first run.

use crate::config::{Config, KeySource};
use anyhow::Context;
use secrecy::ExposeSecret;
use std::io::Write;
use std::path::Path;
use xmcp_crypto::envelope::{DataKey, Keyring};

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

pub use xmcp_auth::identity::upstream_aad;

/// Re-seal every upstream credential under the keyring's active key.
/// Returns (rows re-sealed, rows already current).
pub async fn reseal_all(
    store: &dyn xmcp_store::Store,
    keyring: &Keyring,
    now: i64,
) -> anyhow::Result<(usize, usize)> {
    let (mut changed, mut current) = (0, 0);
    for mut row in store.list_upstream_tokens().await? {
        let access = keyring.reseal(
            &row.access_sealed,
            upstream_aad(&row.user_id, "access").as_bytes(),
        )?;
        let refresh = match &row.refresh_sealed {
            Some(r) => keyring.reseal(r, upstream_aad(&row.user_id, "refresh").as_bytes())?,
            None => None,
        };
        if access.is_none() && refresh.is_none() {
            current += 1;
            continue;
        }
        if let Some(a) = access {
            row.access_sealed = a;
        }
        if let Some(r) = refresh {
            row.refresh_sealed = Some(r);
        }
        row.updated_at = now;
        store.put_upstream_tokens(&row).await?;
        changed += 1;
    }
    Ok((changed, current))
}

/// Read the key file, or create it (mode 0600, parent 0700) with a new key.
pub fn load_or_create_key_file(path: &Path) -> anyhow::Result<DataKey> {
    match std::fs::read_to_string(path) {
        Ok(_) => Ok(read_key_file(path)?.0),
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
    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("encryption.key");
        let a = super::load_or_create_key_file(&path).unwrap();
        let b = super::load_or_create_key_file(&path).unwrap();
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
