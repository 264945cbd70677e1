//! Tests of `figures.rs` (kept in their own file so that file stays under 600 lines): what the
//! report owns, what it refuses, and what it cleans up.

use super::*;

/// Writes a 7-cell theory experiment named `name` into `results`.
fn theory_results(results: &Path, name: &str) {
    for cell in crate::load::fixtures::fake_matrix() {
        crate::load::fixtures::write_cell(&results.join(name), &cell);
    }
}

/// A claims file that does not exist: the page says so.
fn claims() -> PathBuf {
    PathBuf::from("no-such-folder/claims.toml")
}

/// Every entry name directly under `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn contents(root: &Path) -> BTreeMap<String, Vec<u8>> {
    present_files(root)
        .unwrap()
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(root.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

#[test]
fn report_owns_only_the_files_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (results, figures) = (dir.path().join("results"), dir.path().join("figures"));
    theory_results(&results, "alpha");
    theory_results(&results, "beta");
    regenerate(&results, &figures, &claims(), &[], false).unwrap();
    let listed = read_outputs(&figures).unwrap().unwrap();
    let present: BTreeSet<String> = present_files(&figures).unwrap().into_iter().collect();
    assert_eq!(listed, present);
    assert!(listed.iter().any(|f| f.starts_with("alpha/")));
    assert!(listed.iter().any(|f| f.starts_with("beta/")));
    // The page is one of the owned files; it links both experiments' figures.
    assert!(listed.contains("index.html"), "{listed:?}");
    let page = std::fs::read_to_string(figures.join("index.html")).unwrap();
    for name in ["alpha", "beta"] {
        let img = format!("<img src=\"{name}/ascent.png\"");
        assert!(page.contains(&img), "{img}");
    }
    assert!(page.contains("cannot read no-such-folder/claims.toml"));
    assert!(verify(&results, &figures, &claims(), &[])
        .unwrap()
        .is_empty());
    assert_eq!(names(dir.path()), ["figures", "results"], "no staging left");

    // A folder from before the list (what earlier builds wrote) is accepted and listed.
    let generated = contents(&figures);
    std::fs::remove_file(figures.join(OUTPUTS)).unwrap();
    regenerate(&results, &figures, &claims(), &[], false).unwrap();
    assert_eq!(read_outputs(&figures).unwrap().unwrap(), listed);
    assert_eq!(contents(&figures), generated);

    // A file an earlier run generated but this one does not, and an experiment gone from
    // results/, are removed; nothing else is left.
    std::fs::write(figures.join("alpha/retired.svg"), "<svg/>").unwrap();
    let mut text = std::fs::read_to_string(figures.join(OUTPUTS)).unwrap();
    text.push_str("alpha/retired.svg\n");
    std::fs::write(figures.join(OUTPUTS), text).unwrap();
    std::fs::remove_dir_all(results.join("beta")).unwrap();
    regenerate(&results, &figures, &claims(), &[], false).unwrap();
    assert!(!figures.join("alpha/retired.svg").exists());
    assert!(!figures.join("beta").exists());
    let now = contents(&figures);
    assert!(
        now.keys()
            .all(|f| f.starts_with("alpha/") || f == "index.html"),
        "{now:?}"
    );
    assert_eq!(
        read_outputs(&figures).unwrap().unwrap(),
        now.keys().cloned().collect::<BTreeSet<_>>()
    );
    assert!(verify(&results, &figures, &claims(), &[])
        .unwrap()
        .is_empty());

    // A file passk did not write stops the report, and everything stays as it was.
    std::fs::write(figures.join("notes.txt"), "mine").unwrap();
    std::fs::write(figures.join("alpha/mine.txt"), "mine too").unwrap();
    let before = contents(&figures);
    let e = format!(
        "{:#}",
        regenerate(&results, &figures, &claims(), &[], false).unwrap_err()
    );
    assert!(e.contains("--force") && e.contains("notes.txt"), "{e}");
    assert!(e.contains("alpha/mine.txt"), "{e}");
    assert_eq!(contents(&figures), before);
    assert_eq!(names(dir.path()), ["figures", "results"], "no staging left");
    // Without a list, the same holds (they are not files a fresh regeneration writes).
    std::fs::remove_file(figures.join(OUTPUTS)).unwrap();
    let e = format!(
        "{:#}",
        regenerate(&results, &figures, &claims(), &[], false).unwrap_err()
    );
    assert!(e.contains("--force") && e.contains("notes.txt"), "{e}");
    assert!(figures.join("notes.txt").is_file());
    // The outputs list itself is checked by verify, not reported as a stray figure.
    std::fs::remove_file(figures.join("notes.txt")).unwrap();
    std::fs::remove_file(figures.join("alpha/mine.txt")).unwrap();
    std::fs::write(figures.join(OUTPUTS), "alpha/other.svg\n").unwrap();
    let problems = verify(&results, &figures, &claims(), &[]).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains(OUTPUTS), "{problems:?}");
    // --force takes the folder over.
    std::fs::write(figures.join("notes.txt"), "mine").unwrap();
    regenerate(&results, &figures, &claims(), &[], true).unwrap();
    assert!(!figures.join("notes.txt").exists());
    assert!(verify(&results, &figures, &claims(), &[])
        .unwrap()
        .is_empty());
}

#[test]
fn output_overlapping_results_is_refused_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("project/results");
    std::fs::create_dir_all(results.join("exp/0123456789abcdef")).unwrap();
    std::fs::write(results.join("MANIFEST"), "").unwrap();
    std::fs::write(results.join("exp/0123456789abcdef/cell.json"), "{}").unwrap();
    std::fs::write(dir.path().join("project/README.md"), "readme").unwrap();
    let before = contents(dir.path());
    for (figures, relation) in [
        (results.clone(), "it is the results"),
        (results.join("exp"), "it is inside the results"),
        (results.join("new/figures"), "it is inside the results"),
        (dir.path().join("project"), "it contains the results"),
        (results.join("exp/../../results"), "it is the results"),
    ] {
        for force in [false, true] {
            let e = format!(
                "{:#}",
                regenerate(&results, &figures, &claims(), &[], force).unwrap_err()
            );
            assert!(e.contains(relation) && e.contains("--force"), "{e}");
        }
        let e = format!("{:#}", render_cell_figures(&results, &figures).unwrap_err());
        assert!(e.contains(relation) && e.contains("--per-cell"), "{e}");
        assert_eq!(contents(dir.path()), before, "{}", figures.display());
    }
    assert!(!results.join("new").exists());
}

#[test]
fn leftovers_of_killed_reports_are_cleaned_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    let figures = dir.path().join("figures");
    let write = |rel: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x").unwrap();
    };
    // A folder of a live run (this process) is left alone; a dead one's are removed.
    let live = format!(".figures.staging-{}-999999", std::process::id());
    for rel in [
        "figures/.passk-outputs",
        "figures/a.txt",
        "figures/.staging-4194999-0/theory/x.svg",
        ".figures.staging-4194999-1/theory/x.svg",
        ".figures.old-4194999-2/a.txt",
        &format!("{live}/x.svg"),
    ] {
        write(rel);
    }
    std::fs::write(figures.join(OUTPUTS), "a.txt\n").unwrap();
    regenerate(&results, &figures, &claims(), &[], false).unwrap();
    assert_eq!(names(dir.path()), [live.as_str(), "figures", "results"]);
    assert_eq!(
        names(&figures),
        [OUTPUTS, "index.html"],
        "a.txt is no longer generated"
    );

    // Killed between the two renames: no figures/, the old set aside. It is put back.
    std::fs::remove_dir_all(dir.path().join(&live)).unwrap();
    std::fs::rename(&figures, dir.path().join(".figures.old-4194999-3")).unwrap();
    write(".figures.staging-4194999-4/half.svg");
    recover(dir.path(), "figures").unwrap();
    assert_eq!(names(dir.path()), ["figures", "results"]);
    assert_eq!(names(&figures), [OUTPUTS, "index.html"]);
}

#[test]
fn absolute_resolves_links_and_dot_dot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    assert_eq!(
        absolute(&root.join("a/b/../c/d")).unwrap(),
        root.join("a/c/d")
    );
    assert_eq!(absolute(&root.join("a/./b")).unwrap(), root.join("a/b"));
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("a"), root.join("link")).unwrap();
        assert_eq!(
            absolute(&root.join("link/b/new")).unwrap(),
            root.join("a/b/new")
        );
    }
}
