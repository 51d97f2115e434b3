//! The report in a real browser: headless Chromium (Debian's `chromium` package) opens the demo's
//! report.html; every chart must be drawn with visible marks, the page must write nothing to the
//! console and fetch nothing from the network. Skipped, with a message on stderr, where no
//! Chromium is installed. The two detectors are tested on deliberately broken pages, so a Chromium
//! whose logs change shape fails here instead of letting the report test pass unseen.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::crosswalk;

/// How long one Chromium run may take before it is killed (it takes about a second).
const TIMEOUT: Duration = Duration::from_secs(60);

/// The SVG elements that draw a mark.
const MARKS: [&str; 7] = [
    "rect", "path", "circle", "ellipse", "line", "polyline", "polygon",
];

/// Appended to a copy of the report: measures every chart as laid out and painted by the browser
/// and writes `[[data marks, suppressed stubs, says "suppressed", chart box nonzero], ...]` into a
/// `<pre id="crosswalk-measure">` that `--dump-dom` prints. A mark counts when it is displayed,
/// painted (a fill, or a stroke of nonzero width), has a nonzero box (lines and paths: nonzero
/// in one direction) and lies at least partly inside its chart. A suppressed stub is a mark
/// filled with the report's hatch pattern (`url(#hatch)`), counted only if that pattern exists.
const MEASURE: &str = r#"<script>
(function () {
  var hatch = document.getElementById('hatch') !== null;
  var out = [];
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    var data = 0, stubs = 0;
    svg.querySelectorAll('rect,path,circle,ellipse,line,polyline,polygon').forEach(function (el) {
      var cs = getComputedStyle(el);
      if (cs.display === 'none' || cs.visibility === 'hidden' || parseFloat(cs.opacity) === 0) return;
      var tag = el.tagName.toLowerCase();
      var stroked = cs.stroke !== 'none' && parseFloat(cs.strokeWidth) > 0 && parseFloat(cs.strokeOpacity) > 0;
      var filled = cs.fill !== 'none' && parseFloat(cs.fillOpacity) > 0;
      var painted = (tag === 'line' || tag === 'polyline') ? stroked : (filled || stroked);
      if (!painted) return;
      var r = el.getBoundingClientRect();
      var thin = tag === 'line' || tag === 'path' || tag === 'polyline';
      if (thin ? (r.width <= 0 && r.height <= 0) : (r.width <= 0 || r.height <= 0)) return;
      if (r.right < box.left || r.left > box.right || r.bottom < box.top || r.top > box.bottom) return;
      if ((el.getAttribute('fill') || '').indexOf('url(#hatch)') >= 0) { if (hatch) stubs++; } else { data++; }
    });
    var says = svg.textContent.indexOf('suppressed') >= 0 ? 1 : 0;
    out.push([data, stubs, says, box.width > 0 && box.height > 0 ? 1 : 0]);
  });
  var pre = document.createElement('pre');
  pre.id = 'crosswalk-measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"#;

/// The Chromium to use: `CROSSWALK_CHROMIUM` (which must work), else the first of `chromium`,
/// `chromium-browser`, `google-chrome` and `google-chrome-stable` on PATH that answers
/// `--version` (Ubuntu's `chromium-browser` can be a stub asking for a snap). `None`: skip.
fn chromium() -> Option<PathBuf> {
    let works = |bin: &Path| {
        Command::new(bin)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(bin) = std::env::var_os("CROSSWALK_CHROMIUM").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            works(&bin),
            "CROSSWALK_CHROMIUM is set but `$CROSSWALK_CHROMIUM --version` does not run"
        );
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let bin = dir.join(name);
            if bin.is_file() && works(&bin) {
                return Some(bin);
            }
        }
    }
    eprintln!(
        "skipped: no Chromium found (chromium, chromium-browser or google-chrome on PATH, or \
         CROSSWALK_CHROMIUM); install Debian's chromium package (apt-get install chromium) to \
         render the report in a browser"
    );
    None
}

/// The file:// URL of an absolute path, bytes outside the unreserved set percent-encoded.
fn file_url(path: &Path) -> String {
    let path = path.canonicalize().expect("the page exists");
    let mut url = String::from("file://");
    for b in path.to_str().expect("a UTF-8 path").bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    url
}

/// What one headless Chromium run of a page left behind.
struct Browsed {
    /// The DOM after load, serialised (`--dump-dom`).
    dom: String,
    /// Chromium's stderr, with `--enable-logging=stderr`.
    stderr: String,
    /// The net log (`--log-net-log`), parsed.
    net_log: serde_json::Value,
}

/// Opens `page` in headless Chromium (its own profile under `work`, killed with its helper
/// processes after `TIMEOUT`).
fn browse(bin: &Path, page: &Path, work: &Path) -> Browsed {
    let (dom_path, err_path, net_path) = (
        work.join("dom.html"),
        work.join("stderr.txt"),
        work.join("net-log.json"),
    );
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,900",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!(
        "--user-data-dir={}",
        work.join("profile").display()
    ))
    .arg(format!("--log-net-log={}", net_path.display()))
    .arg("--dump-dom")
    .arg(file_url(page))
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&dom_path).unwrap())
    .stderr(std::fs::File::create(&err_path).unwrap());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("chromium starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            #[cfg(target_os = "linux")]
            // SAFETY: kill(2) on the process group this test created for the child.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {} s", TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "chromium exited with {status}");
    let net_log = std::fs::read_to_string(&net_path).expect("chromium wrote a net log");
    Browsed {
        dom: std::fs::read_to_string(&dom_path).unwrap(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned(),
        net_log: serde_json::from_str(&net_log).expect("the net log is JSON"),
    }
}

/// The console messages and uncaught exceptions of the page in Chromium's stderr. Chromium logs
/// each as `[pid:tid:time:INFO:CONSOLE:LINE] "message", source: URL (LINE)` (Chromium 156; older
/// releases `...:INFO:CONSOLE(LINE)]`), with no level for console.error against console.log, so
/// every console line counts: the report has no script and nothing should write to the console.
/// Chromium's own `ERROR:` lines (D-Bus, GPU) on a bare machine are not console lines.
fn console_lines(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| {
            let prefix = l
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(p, _)| p);
            prefix.is_some_and(|p| p.contains(":CONSOLE")) || l.contains("Uncaught")
        })
        .count()
}

/// Every string in a JSON value.
fn strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The network URLs and hosts the page asked for: net-log events made on behalf of a file://
/// page (their network isolation or anonymization key, site for cookies or cache key names
/// `file://`, or their initiator is the page's opaque origin `null`) whose `url`, `host`,
/// `destination` or `logical_destination` has a scheme other than file, data, about, blob or
/// chrome. file:// loads themselves never reach the network stack and are not in the log. The
/// browser's own traffic (component updates, accounts, time: Chromium sends it even with
/// --disable-background-networking) is keyed to its own sites and not counted. This catches
/// images, stylesheets, fonts, CSS backgrounds, SVG images, iframes, preconnects and DNS
/// prefetches (tried by hand on Chromium 156).
fn page_requests(net_log: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    let events = net_log["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for ev in events {
        let params = &ev["params"];
        let mut all = Vec::new();
        strings(params, &mut all);
        let from_page = all.iter().any(|s| s.contains("file://"))
            || params["initiator"].as_str() == Some("null");
        if !from_page {
            continue;
        }
        for key in ["url", "host", "destination", "logical_destination"] {
            if let Some((scheme, _)) = params[key].as_str().and_then(|u| u.split_once("://")) {
                if !["file", "data", "about", "blob", "chrome"].contains(&scheme) {
                    let url = params[key].as_str().unwrap().to_string();
                    if !found.contains(&url) {
                        found.push(url);
                    }
                }
            }
        }
    }
    found
}

/// A start tag: lower-case name, byte offset, attributes (lower-case name, raw value).
type Tag = (String, usize, Vec<(String, String)>);

/// The start tags of an HTML text; comments and the contents of `<style>` and `<script>` are
/// skipped.
fn start_tags(html: &str) -> Vec<Tag> {
    let b = html.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let at = i + off;
        i = at + 1;
        if html[at..].starts_with("<!--") {
            i = html[at..].find("-->").map_or(b.len(), |e| at + e + 3);
            continue;
        }
        if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_end = html[i..]
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .map_or(b.len(), |e| i + e);
        let name = html[i..name_end].to_ascii_lowercase();
        i = name_end;
        let mut attrs = Vec::new();
        loop {
            while b
                .get(i)
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b'/')
            {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                i += 1;
                break;
            }
            let key_end = html[i..]
                .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
                .map_or(b.len(), |e| i + e);
            let key = html[i..key_end].to_ascii_lowercase();
            i = key_end;
            let mut value = String::new();
            if b.get(i) == Some(&b'=') {
                i += 1;
                match b.get(i) {
                    Some(&q) if q == b'"' || q == b'\'' => {
                        let end = html[i + 1..].find(q as char).map_or(b.len(), |e| i + 1 + e);
                        value = html[i + 1..end].to_string();
                        i = end + 1;
                    }
                    _ => {
                        let end = html[i..]
                            .find(|c: char| c.is_ascii_whitespace() || c == '>')
                            .map_or(b.len(), |e| i + e);
                        value = html[i..end].to_string();
                        i = end;
                    }
                }
            }
            attrs.push((key, value));
        }
        if name == "style" || name == "script" {
            let close = format!("</{name}");
            i = html[i.min(b.len())..]
                .find(&close)
                .map_or(b.len(), |e| i + e);
        }
        tags.push((name, at, attrs));
    }
    tags
}

/// For each `<svg class="chart">` of an HTML text, the number of mark elements in it (up to its
/// `</svg>`; charts do not nest).
fn chart_marks(html: &str) -> Vec<usize> {
    let tags = start_tags(html);
    let mut charts = Vec::new();
    for (n, (name, at, attrs)) in tags.iter().enumerate() {
        let is_chart = name == "svg"
            && attrs
                .iter()
                .any(|(k, v)| k == "class" && v.split_whitespace().any(|c| c == "chart"));
        if !is_chart {
            continue;
        }
        let end = html[*at..].find("</svg>").map_or(html.len(), |e| at + e);
        let marks = tags[n + 1..]
            .iter()
            .take_while(|t| t.1 < end)
            .filter(|t| MARKS.contains(&t.0.as_str()))
            .count();
        charts.push(marks);
    }
    charts
}

#[test]
fn the_demo_report_draws_every_chart_in_chromium_without_console_output_or_network() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let demo = crosswalk(&["demo", "--out", out.to_str().unwrap()]);
    assert!(demo.status.success(), "crosswalk demo failed");
    let report = out.join("run/report.html");
    let source = std::fs::read_to_string(&report).expect("the demo wrote run/report.html");
    let source_charts = chart_marks(&source);
    assert!(!source_charts.is_empty(), "report.html has no chart");

    // The report as written: what the browser parsed, its console and its network requests.
    let work = dir.path().join("plain");
    std::fs::create_dir(&work).unwrap();
    let plain = browse(&bin, &report, &work);
    let dom_charts = chart_marks(&plain.dom);
    assert_eq!(
        dom_charts.len(),
        source_charts.len(),
        "charts in the rendered DOM against report.html"
    );
    assert_eq!(
        dom_charts, source_charts,
        "mark elements per chart in the rendered DOM against report.html"
    );
    let console = console_lines(&plain.stderr);
    assert_eq!(
        console, 0,
        "report.html wrote {console} console message(s) or uncaught exception(s) in Chromium"
    );
    assert!(
        plain.net_log["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "the net log has no events: the network check would see nothing"
    );
    let fetched = page_requests(&plain.net_log).len();
    assert_eq!(
        fetched, 0,
        "report.html asked the network for {fetched} URL(s) or host(s) in Chromium"
    );

    // A copy with the measuring script: every chart laid out with visible marks.
    let measured_page = dir.path().join("measured.html");
    let body_end = source.rfind("</body>").expect("report.html has </body>");
    std::fs::write(
        &measured_page,
        format!("{}{MEASURE}{}", &source[..body_end], &source[body_end..]),
    )
    .unwrap();
    let work = dir.path().join("measured");
    std::fs::create_dir(&work).unwrap();
    let measured = browse(&bin, &measured_page, &work);
    let console = console_lines(&measured.stderr);
    assert_eq!(
        console, 0,
        "{console} console message(s) with the measuring script"
    );
    assert_eq!(page_requests(&measured.net_log).len(), 0);
    let json = measured
        .dom
        .split_once("<pre id=\"crosswalk-measure\">")
        .and_then(|(_, r)| r.split_once("</pre>"))
        .map(|(j, _)| j)
        .expect("the measuring script wrote its result");
    let charts: Vec<[u64; 4]> = serde_json::from_str(json).expect("measurements are JSON");
    assert_eq!(
        charts.len(),
        source_charts.len(),
        "charts measured in the browser against report.html"
    );
    let n = charts.len();
    for (i, &[data, stubs, says_suppressed, boxed]) in charts.iter().enumerate() {
        let i = i + 1;
        assert_eq!(boxed, 1, "chart {i} of {n} takes no space on the page");
        // A chart whose every cell is suppressed still draws one hatched stub per cell and says
        // "suppressed" (report.rs); a chart with neither a data mark nor such a stub is empty.
        assert!(
            data > 0 || (stubs > 0 && says_suppressed == 1),
            "chart {i} of {n} has no visible mark in Chromium ({data} data marks, {stubs} suppressed stubs)"
        );
    }
}

#[test]
fn the_console_detector_sees_an_error_an_exception_and_a_syntax_error() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>broken on purpose</p>\
         <script>console.error('deliberate console error');</script>\
         <script>throw new Error('deliberate exception');</script>\
         <script>this is not javascript</script></body></html>",
    )
    .unwrap();
    let browsed = browse(&bin, &page, dir.path());
    let console = console_lines(&browsed.stderr);
    assert!(
        console >= 3,
        "the console detector saw {console} of the broken page's 3 errors"
    );
    assert!(page_requests(&browsed.net_log).is_empty());
}

#[test]
fn the_network_detector_sees_an_image_a_stylesheet_and_a_css_background() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("fetching.html");
    // Port 9 (discard) on the loopback: refused at once, nothing leaves the machine.
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><link rel=\"stylesheet\" href=\"http://127.0.0.1:9/s.css\">\
         <style>div{background:url(http://127.0.0.1:9/b.png)}</style></head>\
         <body><div>fetches on purpose</div><img src=\"http://127.0.0.1:9/x.png\"></body></html>",
    )
    .unwrap();
    let browsed = browse(&bin, &page, dir.path());
    let found = page_requests(&browsed.net_log);
    for url in [
        "http://127.0.0.1:9/x.png",
        "http://127.0.0.1:9/s.css",
        "http://127.0.0.1:9/b.png",
    ] {
        assert!(
            found.iter().any(|f| f == url),
            "the network detector missed one of the page's 3 requests ({} seen)",
            found.len()
        );
    }
    assert_eq!(console_lines(&browsed.stderr), 0);
}
