//! The Java side of the tests: builds one of the Maven projects under `tests/` (the HDFS
//! launcher and checkers in `tests/hdfs`, Flume's client in `tests/avro`) under a file lock, so
//! parallel test processes do not build it at the same time, and returns the `java -cp`
//! classpath of its classes and dependency jars. A machine without `java` or `mvn` fails the
//! tests that need them with a message that says so: they never skip silently.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// Builds `tests/<project>` (`mvn compile dependency:build-classpath`) once per test process
/// and returns its classpath. Several test modules use the same project; the cache (held
/// while building, so a second caller waits instead of running Maven again) saves a Maven run
/// of 5-20 s each.
pub fn maven_classpath(project: &str) -> String {
    static BUILT: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry(project.to_string())
        .or_insert_with(|| build_classpath(project))
        .clone()
}

fn build_classpath(project: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(project);
    let target = dir.join("target");
    std::fs::create_dir_all(&target).expect("create the Maven target directory");
    let lock = File::create(target.join(".build.lock")).expect("create the build lock file");
    lock.lock().expect("lock the Maven build");
    for tool in ["java", "mvn"] {
        assert!(
            Command::new(tool).arg("-version").output().is_ok(),
            "tests/{project} needs `{tool}` on PATH (JDK 17 and Maven): install them, or run \
             .ci/run, which checks for them"
        );
    }
    let cp_file = target.join("classpath.txt");
    let out = Command::new("mvn")
        .current_dir(&dir)
        .args(["-q", "-B", "compile", "dependency:build-classpath"])
        .arg(format!("-Dmdep.outputFile={}", cp_file.display()))
        .output()
        .expect("run mvn");
    assert!(
        out.status.success(),
        "building tests/{project} with Maven failed (is Maven Central reachable?):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deps = std::fs::read_to_string(&cp_file).expect("read target/classpath.txt");
    drop(lock);
    format!("{}:{}", target.join("classes").display(), deps.trim())
}
