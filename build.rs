//! Stamps the build with the commit it came from, for `taskraft_build_info`
//! and `/api/cluster`: `TASKRAFT_COMMIT` if set (a Docker build has no .git),
//! else `git rev-parse --short=12 HEAD`, else "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=TASKRAFT_COMMIT");
    let commit = match std::env::var("TASKRAFT_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_string(),
        _ => {
            // Rebuild the stamp when HEAD moves (a worktree has its own HEAD):
            // HEAD itself, the branch it names, and packed-refs, where the
            // branch lives once `git gc` packed it (no loose file then).
            for path in [
                Some("HEAD".to_string()),
                git(&["symbolic-ref", "-q", "HEAD"]),
                Some("packed-refs".to_string()),
            ]
            .into_iter()
            .flatten()
            {
                // A missing file would make cargo rerun this on every build.
                if let Some(file) = git(&["rev-parse", "--git-path", &path])
                    .filter(|file| std::path::Path::new(file).exists())
                {
                    println!("cargo:rerun-if-changed={file}");
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=TASKRAFT_BUILD_COMMIT={commit}");
}
