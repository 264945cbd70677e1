//! The report page (`figures/index.html`) in headless Chromium: a screenshot, no broken image,
//! no console error. Ignored by default (Chromium is a Debian package, not a Rust one):
//! `cargo xtask browser-test` installs it when missing and runs this.
//!
//! The check loads a copy of the page, written under `target/`, with `<base href>` pointing at
//! the figures folder and a small script in front that records resource load errors, script
//! errors and `console.error` calls and, on `load`, every `<img>` that did not decode
//! (`naturalWidth == 0`); `--dump-dom` then prints them in the DOM. The same check on a page
//! with a missing image must find it, so a check that sees nothing cannot pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use passk_e2e::external::{figures_dir, find_program, out_dir, run_with_timeout};

const LIMIT: Duration = Duration::from_secs(180);

/// The recorder put in front of the page (see the module documentation).
const RECORDER: &str = r#"<script>
window.__passkErrors = [];
(function () {
  var original = console.error;
  console.error = function () {
    window.__passkErrors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      window.__passkErrors.push("failed to load " + (t.src || t.href));
    } else {
      window.__passkErrors.push("script error: " + e.message);
    }
  }, true);
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (i) { return !i.complete || i.naturalWidth === 0; })
      .map(function (i) { return i.getAttribute("src"); });
    var pre = document.createElement("pre");
    pre.id = "passk-check";
    pre.textContent = JSON.stringify({
      images: images.length, broken: broken, errors: window.__passkErrors });
    document.body.appendChild(pre);
  });
})();
</script>
"#;

/// What the recorder found on one page, and the browser's console lines that report errors.
#[derive(Debug)]
struct Found {
    images: usize,
    broken: Vec<String>,
    errors: Vec<String>,
}

fn chromium() -> PathBuf {
    find_program(
        "PASSK_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
        "browser-test",
    )
}

/// Chromium headless with what it needs in a container (no sandbox as root, no GPU), a
/// profile of its own under `work` and console messages logged to stderr.
fn browser(work: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=1",
    ])
    .arg(format!(
        "--user-data-dir={}",
        work.join("profile").display()
    ));
    cmd
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Loads `page` (a copy with the recorder, resolving links against `base`) and reads back
/// what the recorder found, plus console lines at error level from the browser's log.
fn check(page_html: &str, base: &Path, work: &Path) -> Found {
    let head = page_html.find("<head>").expect("the page has a <head>") + "<head>".len();
    let copy = format!(
        "{}\n<base href=\"{}/\">\n{RECORDER}{}",
        &page_html[..head],
        url(base),
        &page_html[head..]
    );
    let path = work.join("checked.html");
    std::fs::write(&path, copy).unwrap();
    let output = run_with_timeout(
        browser(work)
            .arg("--virtual-time-budget=10000")
            .arg("--dump-dom")
            .arg(url(&path)),
        LIMIT,
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    std::fs::write(work.join("dom.html"), dom.as_bytes()).unwrap();
    std::fs::write(work.join("chromium.log"), log.as_bytes()).unwrap();
    assert!(
        output.status.success(),
        "chromium --dump-dom failed ({}): {log}",
        output.status
    );
    let start = dom
        .find("<pre id=\"passk-check\">")
        .unwrap_or_else(|| panic!("the recorder left no result (did the page load?): {log}"))
        + "<pre id=\"passk-check\">".len();
    let end = start + dom[start..].find("</pre>").expect("</pre>");
    let json = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let value: serde_json::Value = serde_json::from_str(&json).expect("the recorder's JSON");
    let strings = |key: &str| -> Vec<String> {
        value[key]
            .as_array()
            .expect("an array")
            .iter()
            .map(|v| v.as_str().unwrap_or("null").to_string())
            .collect()
    };
    let mut errors = strings("errors");
    // The browser's own log of the console (`...:INFO:CONSOLE:<line>] "message", source: ...`,
    // whatever the level): the page has no script, so any message is unexpected.
    errors.extend(
        log.lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string),
    );
    Found {
        images: value["images"].as_u64().expect("a count") as usize,
        broken: strings("broken"),
        errors,
    }
}

#[test]
#[ignore = "needs chromium; run cargo xtask browser-test"]
fn report_page_loads_every_image_without_console_errors() {
    let figures = figures_dir();
    let page = figures.join("index.html");
    let html = std::fs::read_to_string(&page)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask report`)", page.display()));
    let work = out_dir(env!("CARGO_TARGET_TMPDIR"), "browser-test");

    // The page as it is, for people to look at.
    let shot = work.join("index.png");
    let output = run_with_timeout(
        browser(&work)
            .arg("--window-size=1280,2400")
            .arg(format!("--screenshot={}", shot.display()))
            .arg(url(&page)),
        LIMIT,
    );
    assert!(
        output.status.success() && shot.is_file(),
        "chromium --screenshot failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let size = std::fs::metadata(&shot).unwrap().len();
    assert!(size > 10_000, "the screenshot has {size} bytes: blank?");

    let found = check(&html, &figures, &work);
    let expected = html.matches("<img ").count();
    assert!(expected > 0, "the page shows no image");
    assert_eq!(found.images, expected, "images in the DOM: {found:?}");
    assert!(found.broken.is_empty(), "broken images: {:?}", found.broken);
    assert!(
        found.errors.is_empty(),
        "console errors: {:?}",
        found.errors
    );

    // The check itself sees a missing image, its failed load, a console error (through the
    // recorder and the browser's log) and a script error.
    let bad_dir = work.join("broken");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = "<!DOCTYPE html>\n<html><head><title>t</title></head><body>\
               <img src=\"missing.png\" alt=\"missing\">\
               <script>console.error(\"passk-self-check\"); passkUndefined();</script>\
               </body></html>\n";
    let seen = check(bad, &bad_dir, &bad_dir);
    assert_eq!(seen.broken, ["missing.png"], "{seen:?}");
    for sign in [
        "failed to load file://",
        "console.error: passk-self-check",
        "\"passk-self-check\", source:",
        "passkUndefined is not defined",
    ] {
        assert!(
            seen.errors.iter().any(|e| e.contains(sign)),
            "{sign}: {seen:?}"
        );
    }
    println!(
        "browser-test: {} images loaded, no broken image, no console error; screenshot {}",
        found.images,
        shot.display()
    );
}
