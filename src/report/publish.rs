//! Publishing a run's report folder whole: readers (people, a web server, the next
//! program in a pipeline) see the previous complete report or the new complete one,
//! never a half-written mix — also when the run is killed while writing.
//!
//! A run writes into a fresh hidden folder beside the target (`.<name>.run-<tag>`).
//! When every file is written, `<name>` — a symbolic link — is switched to it with one
//! `rename`, then `latest` is switched to `<name>` the same way, and only then is the
//! folder `<name>` pointed at before removed. A `rename` over a link is atomic, so at
//! every moment both names resolve to a complete folder. Folders left by a run killed
//! before publishing are removed by the next publish of the same name.

use std::io;
use std::path::{Path, PathBuf};

/// A report folder being written, not yet visible under its name.
#[derive(Debug)]
pub struct Staging {
    base: PathBuf,
    name: String,
    folder: String,
}

impl Staging {
    /// Start the folder that will be published as `base/name`; `tag` makes it unique
    /// (the run's id).
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn new(base: &Path, name: &str, tag: &str) -> io::Result<Staging> {
        std::fs::create_dir_all(base)?;
        let folder = format!(".{name}.run-{tag}");
        let path = base.join(&folder);
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir(&path)?;
        Ok(Staging {
            base: base.to_owned(),
            name: name.to_owned(),
            folder,
        })
    }

    /// Where to write the files.
    pub fn path(&self) -> PathBuf {
        self.base.join(&self.folder)
    }

    /// The path readers use once it is published: `base/name`.
    pub fn published_path(&self) -> PathBuf {
        self.base.join(&self.name)
    }

    /// Make the folder visible as `base/name` and `base/latest`; returns `base/name`.
    ///
    /// # Errors
    /// When a rename or a link fails; what was published before stays in place.
    pub fn publish(self) -> io::Result<PathBuf> {
        let target = self.published_path();
        let previous = previous_folder(&self.base, &target, &self.folder)?;
        crate::crashpoint::reached("report.before_publish");
        switch_link(&self.base, &self.name, &self.folder)?;
        crate::crashpoint::reached("report.before_latest");
        switch_link(&self.base, "latest", &self.name)?;
        if let Some(old) = previous.filter(|old| *old != self.folder) {
            let _ = std::fs::remove_dir_all(self.base.join(old));
        }
        remove_leftovers(&self.base, &self.name, &self.folder);
        Ok(target)
    }
}

/// The folder `target` shows now, as a name in `base`. A real folder (from before
/// reports were published this way) is first moved aside under a hidden name.
fn previous_folder(base: &Path, target: &Path, tag: &str) -> io::Result<Option<String>> {
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
        Ok(meta) if meta.file_type().is_symlink() => Ok(std::fs::read_link(target)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())),
        Ok(_) => {
            let aside = format!(".{}.old{tag}", file_name(target));
            std::fs::rename(target, base.join(&aside))?;
            Ok(Some(aside))
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Point `base/link` at `points_to` (a name in `base`), replacing it atomically.
#[cfg(unix)]
fn switch_link(base: &Path, link: &str, points_to: &str) -> io::Result<()> {
    let temp = base.join(format!(".{link}.link-{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(points_to, &temp)?;
    std::fs::rename(&temp, base.join(link))
}

/// Without symbolic links: replace `base/link` by a copy-free rename of the folder, or
/// by a text file naming it (for `latest`).
#[cfg(not(unix))]
fn switch_link(base: &Path, link: &str, points_to: &str) -> io::Result<()> {
    let path = base.join(link);
    if link == "latest" {
        return std::fs::write(path, points_to);
    }
    if path.exists() {
        std::fs::remove_dir_all(&path)?;
    }
    std::fs::rename(base.join(points_to), path)
}

/// Remove the hidden folders of `name` that runs killed before publishing left behind.
fn remove_leftovers(base: &Path, name: &str, keep: &str) {
    let prefix = format!(".{name}.run-");
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file != keep {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn publish(base: &Path, tag: &str, text: &str) -> PathBuf {
        let staging = Staging::new(base, "2020-04-01", tag).unwrap();
        std::fs::write(staging.path().join("report.md"), text).unwrap();
        staging.publish().unwrap()
    }

    #[test]
    fn publishing_switches_both_names_and_removes_the_old_folder() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        publish(base, "1", "first");
        // A run that died while writing left a folder behind.
        std::fs::create_dir(base.join(".2020-04-01.run-2")).unwrap();
        let published = publish(base, "3", "second");
        assert_eq!(published, base.join("2020-04-01"));
        for name in ["2020-04-01", "latest"] {
            let text = std::fs::read_to_string(base.join(name).join("report.md")).unwrap();
            assert_eq!(text, "second");
        }
        let mut names: Vec<String> = std::fs::read_dir(base)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".2020-04-01.run-3", "2020-04-01", "latest"]);
    }

    #[test]
    fn a_real_folder_from_an_older_runner_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir(base.join("2020-04-01")).unwrap();
        std::fs::write(base.join("2020-04-01/report.md"), "old").unwrap();
        publish(base, "7", "new");
        let text = std::fs::read_to_string(base.join("latest/report.md")).unwrap();
        assert_eq!(text, "new");
        assert!(std::fs::symlink_metadata(base.join("2020-04-01"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
