//! The report in a real browser: headless Chromium (the system's
//! /usr/bin/chromium, over the DevTools protocol) opens report.html of a
//! run and of two sweeps, and the test checks that the page loads without
//! a console error, an uncaught exception or a failed load, that it loads
//! nothing from elsewhere, and that it shows every chart (one rendered SVG
//! per plots/ file); it saves full-page screenshots under target/tmp/.
//!
//! Without /usr/bin/chromium the test prints a notice and passes, unless
//! TECHDIFF_REQUIRE_BROWSER=1 (as in .ci/run), when it fails.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::Log::LogEntryLevel;
use headless_chrome::protocol::cdp::Page;
use headless_chrome::protocol::cdp::Runtime::ConsoleAPICalledEventTypeOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions, Tab};

use common::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser, or None (after a notice) when it is absent and not required.
fn browser(profile: &Path) -> Option<Browser> {
    if !Path::new(CHROMIUM).exists() {
        let required = std::env::var("TECHDIFF_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "TECHDIFF_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (Debian: apt-get install chromium)"
        );
        // Straight to stderr: the test harness does not capture this.
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: browser test skipped: {CHROMIUM} not found (set TECHDIFF_REQUIRE_BROWSER=1 to make this a failure)"
        );
        return None;
    }
    let args: Vec<&OsStr> = [
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let options = LaunchOptions::default_builder()
        .path(Some(PathBuf::from(CHROMIUM)))
        .headless(true)
        .sandbox(false)
        .user_data_dir(Some(profile.to_path_buf()))
        .window_size(Some((1400, 1000)))
        .idle_browser_timeout(Duration::from_secs(120))
        .args(args)
        .build()
        .expect("launch options");
    Some(Browser::new(options).expect("Chromium starts"))
}

/// Problems the page reports: uncaught exceptions, console.error calls and
/// error log entries (failed loads, blocked resources, CSP, ...).
type Problems = Arc<Mutex<Vec<String>>>;

fn open(browser: &Browser) -> (Arc<Tab>, Problems) {
    let tab = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(60));
    let problems: Problems = Arc::new(Mutex::new(Vec::new()));
    let sink = problems.clone();
    tab.enable_runtime().unwrap();
    tab.enable_log().unwrap();
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let found = match event {
            Event::RuntimeExceptionThrown(e) => {
                Some(format!("exception: {}", e.params.exception_details.text))
            }
            Event::RuntimeConsoleAPICalled(c)
                if matches!(
                    c.params.Type,
                    ConsoleAPICalledEventTypeOption::Error
                        | ConsoleAPICalledEventTypeOption::Assert
                ) =>
            {
                Some(format!(
                    "console.error: {:?}",
                    c.params.args.first().and_then(|a| a.value.clone())
                ))
            }
            Event::LogEntryAdded(l) if l.params.entry.level == LogEntryLevel::Error => {
                Some(format!("log: {}", l.params.entry.text))
            }
            _ => None,
        };
        if let Some(f) = found {
            sink.lock().unwrap().push(f);
        }
    }))
    .unwrap();
    (tab, problems)
}

/// Load `page` and give late events a moment to arrive.
fn load(tab: &Tab, page: &Path) {
    let url = format!("file://{}", page.display());
    tab.navigate_to(&url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.evaluate(
        "new Promise(r => requestAnimationFrame(() => setTimeout(r, 200)))",
        true,
    )
    .unwrap();
}

fn eval_json(tab: &Tab, js: &str) -> serde_json::Value {
    let v = tab.evaluate(js, false).unwrap();
    let text = v
        .value
        .expect("a value")
        .as_str()
        .expect("JSON text")
        .to_string();
    serde_json::from_str(&text).unwrap()
}

/// What the page shows, measured in the browser.
const INSPECT: &str = r#"JSON.stringify({
  title: document.title,
  figures: Array.from(document.querySelectorAll('figure.chart')).map(f => {
    const svgs = f.querySelectorAll('svg');
    const box = svgs.length ? svgs[0].getBoundingClientRect() : {width: 0, height: 0};
    const content = svgs.length ? svgs[0].getBBox() : {width: 0, height: 0};
    return {
      id: f.dataset.chart,
      svgs: svgs.length,
      width: box.width, height: box.height,
      drawn: content.width * content.height,
      texts: f.querySelectorAll('svg text').length,
      shapes: f.querySelectorAll('svg polyline, svg polygon, svg rect, svg circle, svg path').length,
    };
  }),
  scripts: document.scripts.length,
  resources: performance.getEntriesByType('resource').map(r => r.name),
  glance: (document.querySelector('#glance') || {innerText: ''}).innerText,
  height: document.documentElement.scrollHeight,
})"#;

fn plot_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".svg")
                .to_string()
        })
        .collect();
    ids.sort();
    ids
}

/// Open a report, check it, save a screenshot; returns the chart ids shown.
fn check_report(browser: &Browser, dir: &Path, shot: &str, first_screen: &[&str]) -> Vec<String> {
    let (tab, problems) = open(browser);
    load(&tab, &dir.join("report.html"));
    let page = eval_json(&tab, INSPECT);
    let problems = problems.lock().unwrap().clone();
    assert!(problems.is_empty(), "{}: {problems:?}", dir.display());
    assert_eq!(page["scripts"], 0);
    assert_eq!(
        page["resources"].as_array().unwrap().len(),
        0,
        "the page loads nothing: {}",
        page["resources"]
    );
    let glance = page["glance"].as_str().unwrap();
    for part in first_screen {
        assert!(
            glance.contains(part),
            "`{part}` not on the first screen: {glance}"
        );
    }
    let mut ids = Vec::new();
    for f in page["figures"].as_array().unwrap() {
        let id = f["id"].as_str().unwrap().to_string();
        assert_eq!(f["svgs"], 1, "{id}");
        assert!(f["width"].as_f64().unwrap() > 600.0, "{id}: {f}");
        assert!(f["height"].as_f64().unwrap() > 200.0, "{id}: {f}");
        assert!(
            f["drawn"].as_f64().unwrap() > 100_000.0,
            "{id} draws nothing: {f}"
        );
        assert!(
            f["texts"].as_u64().unwrap() >= 8,
            "{id}: axis labels and legend: {f}"
        );
        assert!(f["shapes"].as_u64().unwrap() >= 10, "{id}: {f}");
        ids.push(id);
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, plot_ids(dir), "one figure per plots/ file");
    // The whole page as PNG.
    let height = page["height"].as_f64().unwrap();
    let png = tab
        .call_method(Page::CaptureScreenshot {
            format: Some(Page::CaptureScreenshotFormatOption::Png),
            quality: None,
            clip: Some(Page::Viewport {
                x: 0.0,
                y: 0.0,
                width: 1400.0,
                height,
                scale: 1.0,
            }),
            from_surface: Some(true),
            capture_beyond_viewport: Some(true),
            optimize_for_speed: None,
        })
        .unwrap()
        .data;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png)
        .unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 50_000);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(shot);
    std::fs::write(&out, &png).unwrap();
    let _ = writeln!(std::io::stderr(), "screenshot: {}", out.display());
    tab.close(true).ok();
    ids
}

#[test]
fn reports_render_in_chromium_without_errors_and_show_every_chart() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(browser) = browser(&tmp.path().join("profile")) else {
        return;
    };

    // The harness itself: a page with a script error, a console.error and a
    // missing image must be caught.
    let bad = tmp.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><img src=\"missing.png\"><script>console.error('boom'); undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let (tab, problems) = open(&browser);
    load(&tab, &bad);
    let seen = problems.lock().unwrap().join(" | ");
    assert!(
        seen.contains("exception"),
        "uncaught error not seen: {seen}"
    );
    assert!(
        seen.contains("console.error"),
        "console.error not seen: {seen}"
    );
    assert!(seen.contains("log: "), "failed load not seen: {seen}");
    tab.close(true).ok();

    // A run of the default scenario, shortened: two replications.
    let run = tmp.path().join("run");
    let scenario = repo().join("scenarios/tightening.toml");
    techdiff_ok(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--reps",
            "2",
            "--set",
            "steps=8",
            "--set",
            "innovation.per_step=60",
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--report",
        ],
        tmp.path(),
    );
    let ids = check_report(
        &browser,
        &run,
        "report-run.png",
        &[
            "tightening",
            "securitization cost",
            "bloc B",
            "seed",
            "reproduce",
            "techdiff run",
        ],
    );
    assert_eq!(
        ids,
        [
            "securitization_cost",
            "productivity_by_bloc",
            "productivity_by_income",
            "adoption_by_sector",
            "coinvention_share",
            "trust_and_retaliation",
            "controls",
            "world_map"
        ]
    );

    // A grid sweep (effects, heat map) and a sobol sweep (indices) of a
    // small synthetic scenario.
    write_small_base(tmp.path());
    for (name, design, expected) in [
        (
            "grid",
            "design = \"grid\"\n[[param]]\nname = \"licence\"\npath = \"policy.export_control[0].licence_rate\"\nvalues = [0.1, 0.9]\n[[param]]\nname = \"chilling\"\npath = \"policy.cooperation.chilling\"\nvalues = [0.0, 0.5]\n",
            &[
                "effect_securitization_cost",
                "heatmap_securitization_cost_all_licence_chilling",
            ][..],
        ),
        (
            "sobol",
            "design = \"sobol\"\nsamples = 4\nbootstrap = 20\n[[param]]\nname = \"licence\"\npath = \"policy.export_control[0].licence_rate\"\nmin = 0.0\nmax = 1.0\n[[param]]\nname = \"chilling\"\npath = \"policy.cooperation.chilling\"\nmin = 0.0\nmax = 0.8\n",
            &[
                "effect_securitization_cost",
                "sensitivity_securitization_cost_all",
            ],
        ),
    ] {
        std::fs::write(
            tmp.path().join(format!("{name}.toml")),
            format!(
                "scenario = \"base.toml\"\nreplications = 2\nmetrics = [\"securitization_cost@all\"]\n{design}"
            ),
        )
        .unwrap();
        let out = tmp.path().join(format!("{name}-out"));
        techdiff_ok(
            &[
                "sweep",
                &format!("{name}.toml"),
                "--out",
                out.to_str().unwrap(),
                "--quiet",
                "--report",
            ],
            tmp.path(),
        );
        let ids = check_report(
            &browser,
            &out,
            &format!("report-sweep-{name}.png"),
            &["design", "seed", "reproduce", "techdiff sweep"],
        );
        assert_eq!(ids, expected, "{name}");
    }
}
