//! The configuration file a reloading agent runs ([`ConfigFile`]): read it, parse it into a
//! [`Loaded`] configuration (the typed [`AgentConfig`] and the [`Fingerprints`] a reload
//! compares), and tell whether it changed since it was last read.
//!
//! A change is a new modification time or size *and* new contents: touching the file does
//! not reload it. A file seen changing while it is read (an editor writing it in place) is
//! read again at the next check rather than applied half-written; writing the new file
//! beside the old one and renaming it over is the safe way either way.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::config::{check_with_env, AgentConfig};
use super::reload::Fingerprints;
use crate::config::{self, ConfigError, ConfigWarning};

/// A parsed configuration, with what a reload compares.
#[derive(Debug)]
pub struct Loaded {
    pub config: AgentConfig,
    pub fingerprints: Fingerprints,
    pub warnings: Vec<ConfigWarning>,
}

/// A file that cannot be run: why (every error found, see [`ConfigError::Many`]), and the
/// warnings found with it, which say more about what to fix.
#[derive(Debug)]
pub struct Rejected {
    pub error: Box<ConfigError>,
    pub warnings: Vec<ConfigWarning>,
}

impl From<ConfigError> for Rejected {
    fn from(error: ConfigError) -> Rejected {
        Rejected {
            error: Box::new(error),
            warnings: Vec::new(),
        }
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// The environment `${...}` references read (see `config::subst`).
pub type Env = Box<dyn Fn(&str) -> Option<String> + Send>;

/// What identifies one version of the file cheaply.
type Stamp = (Option<SystemTime>, u64);

/// The file of agent `agent` and what was last read from it.
pub struct ConfigFile {
    path: PathBuf,
    agent: String,
    env: Env,
    stamp: Option<Stamp>,
    text: Option<String>,
}

impl ConfigFile {
    /// Reads and parses agent `agent` of `path` (`env` resolves references).
    pub fn load(path: &Path, agent: &str, env: Env) -> Result<(ConfigFile, Loaded), Rejected> {
        let mut file = ConfigFile {
            path: path.to_path_buf(),
            agent: agent.to_string(),
            env,
            stamp: None,
            text: None,
        };
        let text = file.read()?;
        let loaded = file.parse(&text)?;
        Ok((file, loaded))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file now (SIGHUP), remembering what it read.
    pub fn read(&mut self) -> Result<String, ConfigError> {
        let stamp = self.stamp()?;
        let text = config::read_file(&self.path)?;
        self.stamp = Some(stamp);
        self.text = Some(text.clone());
        Ok(text)
    }

    /// The file's new text if it changed since last read (see the module docs); an error
    /// once when it can no longer be read.
    pub fn changed(&mut self) -> Option<Result<String, ConfigError>> {
        let before = match self.stamp() {
            Ok(s) => s,
            // Report a missing or unreadable file once, then stay quiet until it is back.
            Err(e) => return self.stamp.take().map(|_| Err(e)),
        };
        if self.stamp == Some(before) {
            return None;
        }
        let text = match config::read_file(&self.path) {
            Ok(t) => t,
            Err(e) => return self.stamp.take().map(|_| Err(e)),
        };
        if self.stamp().ok() != Some(before) {
            // Still being written: look again next time.
            return None;
        }
        self.stamp = Some(before);
        if self.text.as_deref() == Some(text.as_str()) {
            return None;
        }
        self.text = Some(text.clone());
        Some(Ok(text))
    }

    /// Parses `text` as this file's agent: the configuration, or every error found.
    pub fn parse(&self, text: &str) -> Result<Loaded, Rejected> {
        let file = self.path.display().to_string();
        let env = |name: &str| (self.env)(name);
        let checked = check_with_env(text, &file, &self.agent, &env);
        let warnings = checked.warnings.clone();
        let (config, warnings) = match checked.into_result() {
            Ok(ok) => ok,
            Err(error) => {
                return Err(Rejected {
                    error: Box::new(error),
                    warnings,
                })
            }
        };
        let fingerprints =
            Fingerprints::read(text, &file, &self.agent, &env).map_err(|error| Rejected {
                error: Box::new(error),
                warnings: warnings.clone(),
            })?;
        Ok(Loaded {
            config,
            fingerprints,
            warnings,
        })
    }

    fn stamp(&self) -> Result<Stamp, ConfigError> {
        let m = std::fs::metadata(&self.path).map_err(|source| ConfigError::Io {
            file: self.path.display().to_string(),
            source,
        })?;
        Ok((m.modified().ok(), m.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
        a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n\
        a1.channels.c1.type = memory\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n";

    #[test]
    fn a_change_is_new_contents_not_a_touch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.conf");
        std::fs::write(&path, CONF).expect("write");
        let (mut f, loaded) = ConfigFile::load(&path, "a1", Box::new(|_| None)).expect("loads");
        assert_eq!(loaded.config.sources.len(), 1);
        assert!(f.changed().is_none());
        // The same contents with a new modification time: no change.
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .expect("set mtime");
        assert!(f.changed().is_none());
        let new = CONF.replace("memory", "memory\na1.channels.c1.capacity = 5");
        std::fs::write(&path, &new).expect("write");
        let text = f.changed().expect("changed").expect("reads");
        assert_eq!(text, new);
        assert!(f.changed().is_none(), "reported once");
        std::fs::remove_file(&path).expect("remove");
        let err = f.changed().expect("reported").expect_err("gone");
        assert!(err.to_string().contains("a.conf"), "{err}");
        assert!(f.changed().is_none(), "a missing file is reported once");
        std::fs::write(&path, CONF).expect("write back");
        assert_eq!(f.changed().expect("back").expect("reads"), CONF);
    }

    #[test]
    fn a_parse_error_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.conf");
        std::fs::write(&path, CONF).expect("write");
        let (f, _) = ConfigFile::load(&path, "a1", Box::new(|_| None)).expect("loads");
        let err = f
            .parse(&CONF.replace("type = seq", "type = nope"))
            .expect_err("bad type");
        assert!(err.to_string().contains("b.conf"), "{err}");
    }
}
