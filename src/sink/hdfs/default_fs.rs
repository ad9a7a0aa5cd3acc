//! Where a plain `hdfs.path` (`/user/flume/events`) goes: where Hadoop would send it, the
//! default filesystem `fs.defaultFS`, read from `core-site.xml` in the Hadoop configuration
//! directory (`$HADOOP_CONF_DIR`, else `$HADOOP_HOME/etc/hadoop`, the directory hdfs-native
//! reads too), with `hdfs.config.fs.defaultFS` winning over the file as it does in
//! hdfs-native. With no such setting the path is local, as in Hadoop (whose built-in default
//! is `file:///`), and [`Resolution::looked_at`] says what was searched so the sink can warn.
//!
//! Invariant: the environment comes in as a value ([`HadoopEnv`]), never read here, so tests
//! run in parallel without touching the process environment. The only I/O is reading
//! `core-site.xml`.

use std::path::{Path, PathBuf};

/// Hadoop's configuration directory as the environment names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HadoopEnv {
    /// `$HADOOP_CONF_DIR`.
    pub conf_dir: Option<PathBuf>,
    /// `$HADOOP_HOME`.
    pub home: Option<PathBuf>,
}

impl HadoopEnv {
    /// The process's `HADOOP_CONF_DIR` and `HADOOP_HOME` (empty values count as unset).
    pub fn from_process() -> HadoopEnv {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        HadoopEnv {
            conf_dir: var("HADOOP_CONF_DIR"),
            home: var("HADOOP_HOME"),
        }
    }

    /// The Hadoop configuration files hdfs-native reads, for messages.
    pub fn files_read(&self) -> String {
        let Some((dir, how)) = self.dir() else {
            return "none ($HADOOP_CONF_DIR and $HADOOP_HOME are not set)".to_string();
        };
        let files: Vec<String> = ["core-site.xml", "hdfs-site.xml"]
            .iter()
            .map(|f| dir.join(f))
            .filter(|f| f.exists())
            .map(|f| f.display().to_string())
            .collect();
        if files.is_empty() {
            format!(
                "none (no core-site.xml or hdfs-site.xml in {} from {how})",
                dir.display()
            )
        } else {
            files.join(", ")
        }
    }

    /// The directory Hadoop (and hdfs-native) reads `core-site.xml` and `hdfs-site.xml` from,
    /// and how it was chosen.
    fn dir(&self) -> Option<(PathBuf, &'static str)> {
        if let Some(d) = &self.conf_dir {
            return Some((d.clone(), "$HADOOP_CONF_DIR"));
        }
        self.home
            .as_ref()
            .map(|h| (h.join("etc/hadoop"), "$HADOOP_HOME/etc/hadoop"))
    }
}

/// The default filesystem, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// `fs.defaultFS` (`hdfs://nn:8020`, `viewfs://cluster`, `file:///`), or `None` when no
    /// setting was found (Hadoop's default: the local filesystem).
    pub default_fs: Option<String>,
    /// What was searched, for messages: `core-site.xml in $HADOOP_CONF_DIR (/etc/hadoop/conf):
    /// fs.defaultFS = hdfs://nn:8020`, `$HADOOP_CONF_DIR and $HADOOP_HOME are not set`.
    pub looked_at: String,
}

/// Why the Hadoop configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}; fix the file or point HADOOP_CONF_DIR at a valid Hadoop configuration")]
pub struct HadoopConfError {
    pub path: String,
    pub message: String,
}

/// Resolves the default filesystem; see the module docs. `config` is the sink's
/// `hdfs.config.*` settings.
pub fn resolve(
    env: &HadoopEnv,
    config: &[(String, String)],
) -> Result<Resolution, HadoopConfError> {
    if let Some((_, v)) = config.iter().rev().find(|(k, _)| k == "fs.defaultFS") {
        return Ok(Resolution {
            default_fs: Some(v.trim().to_string()),
            looked_at: format!("hdfs.config.fs.defaultFS = {}", v.trim()),
        });
    }
    let Some((dir, how)) = env.dir() else {
        return Ok(Resolution {
            default_fs: None,
            looked_at: "$HADOOP_CONF_DIR and $HADOOP_HOME are not set".to_string(),
        });
    };
    let file = dir.join("core-site.xml");
    let shown = file.display();
    if !file.exists() {
        return Ok(Resolution {
            default_fs: None,
            looked_at: format!("{shown} (from {how}) does not exist"),
        });
    }
    Ok(match read_default_fs(&file)? {
        Some(fs) => Resolution {
            looked_at: format!("{shown} (from {how}): fs.defaultFS = {fs}"),
            default_fs: Some(fs),
        },
        None => Resolution {
            default_fs: None,
            looked_at: format!("{shown} (from {how}) does not set fs.defaultFS"),
        },
    })
}

/// The last `fs.defaultFS` property of a Hadoop configuration file (Hadoop: a later
/// definition wins).
fn read_default_fs(file: &Path) -> Result<Option<String>, HadoopConfError> {
    let err = |message: String| HadoopConfError {
        path: file.display().to_string(),
        message,
    };
    // Hadoop configuration files are small; a bound keeps a wrong path (a log, a device) from
    // being read whole.
    const LIMIT: u64 = 16 << 20;
    let len = std::fs::metadata(file)
        .map_err(|e| err(format!("cannot read: {e}")))?
        .len();
    if len > LIMIT {
        return Err(err(format!(
            "{len} bytes is too large for a Hadoop configuration file"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot read: {e}")))?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, options)
        .map_err(|e| err(format!("not valid XML: {e}")))?;
    let value = doc
        .descendants()
        .filter(|n| n.has_tag_name("property"))
        .filter_map(|p| {
            let child = |tag: &str| {
                p.children()
                    .find(|c| c.has_tag_name(tag))
                    .map(|c| c.text().unwrap_or_default().trim().to_string())
            };
            (child("name")?.as_str() == "fs.defaultFS").then(|| child("value"))?
        })
        .next_back();
    Ok(value.filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_site(dir: &Path, default_fs: Option<&str>) {
        let prop = default_fs.map_or(String::new(), |fs| {
            format!("<property>\n  <name>fs.defaultFS</name>\n  <value> {fs} </value>\n</property>")
        });
        std::fs::write(
            dir.join("core-site.xml"),
            format!(
                "<?xml version=\"1.0\"?>\n<?xml-stylesheet type=\"text/xsl\" href=\"configuration.xsl\"?>\n\
                 <configuration>\n<property><name>hadoop.tmp.dir</name><value>/tmp</value></property>\n{prop}\n</configuration>\n"
            ),
        )
        .expect("write core-site.xml");
    }

    #[test]
    fn conf_dir_wins_over_home_and_a_setting_wins_over_both() {
        let conf = tempfile::tempdir().expect("tempdir");
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(home.path().join("etc/hadoop")).expect("mkdir");
        core_site(conf.path(), Some("hdfs://conf:8020"));
        core_site(&home.path().join("etc/hadoop"), Some("hdfs://home:8020"));
        let both = HadoopEnv {
            conf_dir: Some(conf.path().to_path_buf()),
            home: Some(home.path().to_path_buf()),
        };
        let r = resolve(&both, &[]).expect("resolves");
        assert_eq!(r.default_fs.as_deref(), Some("hdfs://conf:8020"));
        assert!(r.looked_at.contains("$HADOOP_CONF_DIR"), "{}", r.looked_at);

        let home_only = HadoopEnv {
            conf_dir: None,
            home: Some(home.path().to_path_buf()),
        };
        let r = resolve(&home_only, &[]).expect("resolves");
        assert_eq!(r.default_fs.as_deref(), Some("hdfs://home:8020"));
        assert!(
            r.looked_at.contains("etc/hadoop/core-site.xml"),
            "{}",
            r.looked_at
        );

        let set = [("fs.defaultFS".to_string(), "viewfs://fed".to_string())];
        let r = resolve(&both, &set).expect("resolves");
        assert_eq!(r.default_fs.as_deref(), Some("viewfs://fed"));
    }

    #[test]
    fn no_setting_means_local_and_says_what_was_searched() {
        let r = resolve(&HadoopEnv::default(), &[]).expect("resolves");
        assert_eq!(r.default_fs, None);
        assert!(
            r.looked_at.contains("HADOOP_HOME are not set"),
            "{}",
            r.looked_at
        );

        let empty = tempfile::tempdir().expect("tempdir");
        let env = HadoopEnv {
            conf_dir: Some(empty.path().to_path_buf()),
            home: None,
        };
        let r = resolve(&env, &[]).expect("resolves");
        assert_eq!(r.default_fs, None);
        assert!(r.looked_at.contains("does not exist"), "{}", r.looked_at);

        core_site(empty.path(), None);
        let r = resolve(&env, &[]).expect("resolves");
        assert_eq!(r.default_fs, None);
        assert!(
            r.looked_at.contains("does not set fs.defaultFS"),
            "{}",
            r.looked_at
        );
    }

    #[test]
    fn a_broken_core_site_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("core-site.xml"),
            "<configuration><property>",
        )
        .expect("write");
        let env = HadoopEnv {
            conf_dir: Some(dir.path().to_path_buf()),
            home: None,
        };
        let e = resolve(&env, &[]).expect_err("broken XML");
        assert!(e.to_string().contains("core-site.xml"), "{e}");
        assert!(e.to_string().contains("not valid XML"), "{e}");
    }
}
