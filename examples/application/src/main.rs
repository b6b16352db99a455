//! demo-app: a tiny std-only HTTP service, built, tested and deployed by the
//! example application pipeline (see README.md).
//!
//! Usage: `demo-app --port PORT --target NAME [--config-dir DIR] [--dynamic-config DIR]
//! [--model DIR]`
//!
//! - `GET /`         "<greeting> from demo-app <version> on <target>"; the
//!   greeting is the dynamic setting `greeting`, "hello" by default
//! - `GET /version`  the version baked in at build time (`APP_VERSION`, else "dev")
//! - `GET /health`   "ok"; 503 when `release.conf` says
//!   `require_target_config = true` and `targets/<target>.conf` is missing,
//!   or when the dynamic setting `maintenance` is true
//! - `GET /checkout` the checkout flow the flag `new-checkout` selects
//! - `GET /config`   the dynamic configuration in use: version, flags, settings
//! - `GET /base`     the base image the package was built on (`base-os-release`)
//! - `GET /model`    the served model's version and evaluation
//! - `GET /predict?x1=…&x2=…` the served model's prediction
//!
//! Anything else is 404, a non-GET method 405, a malformed request 400.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

mod delivered;
mod dynamic;
mod model;

/// The version baked in at build time: the pipeline sets the short commit.
const VERSION: &str = match option_env!("APP_VERSION") {
    Some(version) => version,
    None => "dev",
};

/// The most a request head (request line and headers) may take.
const MAX_HEAD: usize = 16 * 1024;

const USAGE: &str = "usage: demo-app --port PORT --target NAME [--config-dir DIR] \
                     [--dynamic-config DIR] [--model DIR]";

struct Config {
    port: u16,
    /// The instance's name, e.g. `gamma-18081`.
    target: String,
    /// Where `release.conf` and `targets/` are: next to the binary by default.
    config_dir: PathBuf,
    /// Flags and settings delivered by the dynamic-configuration pipeline.
    dynamic: dynamic::Dynamic,
    /// The model delivered by the machine-learning pipeline.
    model: model::Served,
}

#[derive(Debug, PartialEq)]
struct Response {
    status: u16,
    body: String,
}

impl Response {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            body: body.into(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            503 => "Service Unavailable",
            _ => "Unknown",
        };
        format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.status,
            self.body.len(),
            self.body
        )
        .into_bytes()
    }
}

#[derive(Debug, PartialEq)]
struct Request<'a> {
    method: &'a str,
    /// The target without its query string.
    path: &'a str,
    /// What follows `?`, if anything.
    query: &'a str,
}

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("demo-app: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", config.port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("demo-app: cannot listen on 127.0.0.1:{}: {e}", config.port);
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "demo-app {VERSION} serving {} on 127.0.0.1:{} (config in {})",
        config.target,
        config.port,
        config.config_dir.display()
    );
    let config = Arc::new(config);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let config = Arc::clone(&config);
        if let Err(e) = thread::Builder::new().spawn(move || serve(stream, &config)) {
            eprintln!("demo-app: cannot start a connection thread: {e}");
        }
    }
    ExitCode::SUCCESS
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let (mut port, mut target, mut config_dir, mut dynamic, mut model) =
        (None, None, None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = Some(value.parse().map_err(|_| format!("bad port {value:?}"))?),
            "--target" => target = Some(value),
            "--config-dir" => config_dir = Some(PathBuf::from(value)),
            "--dynamic-config" => dynamic = Some(PathBuf::from(value)),
            "--model" => model = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    let target = target.ok_or("--target is required")?;
    let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if target.is_empty() || target.starts_with('.') || !target.chars().all(valid) {
        return Err(format!("bad target name {target:?}"));
    }
    let config_dir = config_dir.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."))
    });
    Ok(Config {
        port: port.ok_or("--port is required")?,
        target,
        config_dir,
        dynamic: dynamic::Dynamic::new(dynamic),
        model: model::Served::new(model),
    })
}

/// What reading a request head gave.
#[derive(Debug, PartialEq)]
enum Head {
    /// The client went away without sending anything (e.g. a port probe).
    Closed,
    Complete(Vec<u8>),
    Malformed(&'static str),
}

/// Reads up to the blank line that ends the request head.
fn read_head(stream: &mut impl Read) -> Head {
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Head::Complete(head);
        }
        if head.len() > MAX_HEAD {
            return Head::Malformed("request too large\n");
        }
        match stream.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(0) | Err(_) if head.is_empty() => return Head::Closed,
            // The client stopped sending: judge what it sent.
            Ok(0) => return Head::Complete(head),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(_) => return Head::Malformed("incomplete request\n"),
        }
    }
}

fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    crlf.into_iter().chain(lf).min()
}

/// Parses `METHOD TARGET HTTP/1.x`.
fn parse_request_line(line: &str) -> Result<Request<'_>, &'static str> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected METHOD TARGET VERSION\n");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("bad method\n");
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("bad request target\n");
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err("unsupported HTTP version\n");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method,
        path,
        query,
    })
}

/// The response to a complete request head.
fn respond(head: &[u8], config: &Config) -> Response {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Response::new(400, "request line is not UTF-8\n");
    };
    match parse_request_line(line) {
        Ok(request) => route(&request, config),
        Err(why) => Response::new(400, why),
    }
}

fn route(request: &Request<'_>, config: &Config) -> Response {
    if request.method != "GET" {
        return Response::new(405, "only GET is supported\n");
    }
    let settings = config.dynamic.current();
    match request.path {
        "/" => Response::new(
            200,
            format!(
                "{} from demo-app {VERSION} on {}\n",
                settings.text("greeting").unwrap_or("hello"),
                config.target
            ),
        ),
        "/version" => Response::new(200, format!("{VERSION}\n")),
        "/health" if settings.bool("maintenance") => {
            Response::new(503, "in maintenance (dynamic setting)\n")
        }
        "/health" => health(config),
        "/checkout" if settings.flag("new-checkout") => Response::new(200, "checkout: new flow\n"),
        "/checkout" => Response::new(200, "checkout: classic flow\n"),
        "/config" => Response::new(200, describe(&settings)),
        "/base" => base(config),
        "/model" => {
            let m = config.model.current();
            if m.version.is_empty() {
                Response::new(404, "no model delivered\n")
            } else {
                Response::new(200, format!("version {}\nmetrics {}\n", m.version, m.metrics))
            }
        }
        "/predict" => {
            let m = config.model.current();
            match m.predict(request.query) {
                _ if m.version.is_empty() => Response::new(404, "no model delivered\n"),
                Ok(y) => Response::new(200, format!("{y:.3}\n")),
                Err(why) => Response::new(400, format!("{why}\n")),
            }
        }
        _ => Response::new(404, "not found\n"),
    }
}

/// The base image the package was built on: the `PRETTY_NAME` of the
/// `os-release` its build packaged as `base-os-release`, and its digest.
fn base(config: &Config) -> Response {
    let read = |name: &str| fs::read_to_string(config.config_dir.join(name)).unwrap_or_default();
    let release = read("base-os-release");
    let name = release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned());
    match name {
        Some(name) => Response::new(200, format!("{name} {}\n", read("base-digest").trim())),
        None => Response::new(404, "built on no base image\n"),
    }
}

/// The configuration in use, one line per item.
fn describe(c: &dynamic::Snapshot) -> String {
    let version = if c.version.is_empty() { "none" } else { &c.version };
    let mut out = format!("version {version}\n");
    for (name, on) in &c.flags {
        out.push_str(&format!("flag {name} {}\n", if *on { "on" } else { "off" }));
    }
    for (name, value) in &c.settings {
        out.push_str(&format!("setting {name} {value}\n"));
    }
    out
}

/// Healthy unless the release requires a per-target config file this
/// target does not have.
fn health(config: &Config) -> Response {
    let release = fs::read_to_string(config.config_dir.join("release.conf")).unwrap_or_default();
    let target_file = config
        .config_dir
        .join("targets")
        .join(format!("{}.conf", config.target));
    if requires_target_config(&release) && !target_file.is_file() {
        Response::new(
            503,
            format!("missing config for target {}\n", config.target),
        )
    } else {
        Response::new(200, "ok\n")
    }
}

/// Whether `release.conf` has the line `require_target_config = true`.
fn requires_target_config(release_conf: &str) -> bool {
    release_conf.lines().any(|line| {
        line.split_once('=').is_some_and(|(key, value)| {
            key.trim() == "require_target_config" && value.trim() == "true"
        })
    })
}

fn serve(mut stream: TcpStream, config: &Config) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let response = match read_head(&mut stream) {
        Head::Closed => return,
        Head::Complete(head) => respond(&head, config),
        Head::Malformed(why) => Response::new(400, why),
    };
    let _ = stream.write_all(&response.to_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    // Drain what the client still sends (a bounded amount), so that closing
    // does not reset the connection before it has read the answer.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut budget: usize = 1 << 20;
    while let Ok(n @ 1..) = stream.read(&mut sink) {
        budget = budget.saturating_sub(n);
        if budget == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config {
            port: 0,
            target: "gamma-18081".to_owned(),
            config_dir: dir.to_path_buf(),
            dynamic: dynamic::Dynamic::new(None),
            model: model::Served::new(None),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("demo-app-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn get(path: &str, config: &Config) -> Response {
        respond(format!("GET {path} HTTP/1.1\r\nHost: x").as_bytes(), config)
    }

    #[test]
    fn parses_a_request_line() {
        assert_eq!(
            parse_request_line("GET /version?x=1 HTTP/1.1"),
            Ok(Request {
                method: "GET",
                path: "/version",
                query: "x=1"
            })
        );
        assert_eq!(
            parse_request_line("POST / HTTP/1.0").map(|r| r.method),
            Ok("POST")
        );
    }

    #[test]
    fn rejects_malformed_request_lines() {
        for line in [
            "",
            "GET",
            "GET /",
            "GET / HTTP/1.1 extra",
            "get / HTTP/1.1",
            "GET relative HTTP/1.1",
            "GET / HTTP/2.0",
            "GET /a\tb HTTP/1.1",
            "GET  / HTTP/1.1",
        ] {
            assert!(parse_request_line(line).is_err(), "accepted {line:?}");
        }
    }

    #[test]
    fn routes_root_version_and_unknown_paths() {
        let config = config(Path::new("/nonexistent"));
        let root = get("/", &config);
        assert_eq!(root.status, 200);
        assert!(root.body.starts_with("hello from demo-app "));
        assert!(root.body.ends_with(" on gamma-18081\n"));
        assert_eq!(
            get("/version", &config),
            Response::new(200, format!("{VERSION}\n"))
        );
        assert_eq!(get("/nope", &config).status, 404);
        assert_eq!(get("/../../etc/passwd", &config).status, 404);
        assert_eq!(get("/%00", &config).status, 404);
        let post = respond(b"POST / HTTP/1.1\r\n", &config);
        assert_eq!(post.status, 405);
    }

    #[test]
    fn malformed_bytes_are_400() {
        let config = config(Path::new("/nonexistent"));
        for head in [
            &b"\xff\xfe / HTTP/1.1"[..],
            b"garbage",
            b"\r\n",
            b"GET /\0 HTTP/1.1",
        ] {
            assert_eq!(respond(head, &config).status, 400, "{head:?}");
        }
    }

    #[test]
    fn reads_the_head_and_refuses_oversized_ones() {
        let mut request: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody";
        assert_eq!(
            read_head(&mut request),
            Head::Complete(b"GET / HTTP/1.1\r\nHost: x".to_vec())
        );
        assert_eq!(read_head(&mut &b""[..]), Head::Closed);
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert!(matches!(read_head(&mut &huge[..]), Head::Malformed(_)));
    }

    #[test]
    fn health_needs_the_target_config_only_when_the_release_requires_it() {
        let dir = temp_dir("health");
        let config = config(&dir);
        assert_eq!(get("/health", &config), Response::new(200, "ok\n"));
        fs::write(
            dir.join("release.conf"),
            "# demo\nrequire_target_config = true\n",
        )
        .expect("write release.conf");
        assert_eq!(get("/health", &config).status, 503);
        fs::create_dir_all(dir.join("targets")).expect("mkdir targets");
        fs::write(dir.join("targets/gamma-18081.conf"), "").expect("write target config");
        assert_eq!(get("/health", &config).status, 200);
        fs::write(dir.join("release.conf"), "require_target_config = false\n")
            .expect("write release.conf");
        fs::remove_dir_all(dir.join("targets")).expect("rm targets");
        assert_eq!(get("/health", &config).status, 200);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn responses_close_the_connection() {
        let text = String::from_utf8(Response::new(404, "not found\n").to_bytes()).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 10\r\n"));
        assert!(text.contains("Connection: close\r\n\r\nnot found\n"));
    }

    #[test]
    fn dynamic_settings_change_answers_without_a_restart() {
        let dir = temp_dir("dynamic");
        let version = dir.join("dynamic/versions/7");
        fs::create_dir_all(&version).expect("mkdir");
        fs::write(version.join("flags.json"), r#"{"new-checkout": true}"#).expect("flags");
        fs::write(
            version.join("settings.json"),
            r#"{"greeting": "hi", "maintenance": false}"#,
        )
        .expect("settings");
        fs::write(version.join("VERSION"), "7\n").expect("version");
        std::os::unix::fs::symlink("versions/7", dir.join("dynamic/current")).expect("link");
        let config = Config {
            dynamic: dynamic::Dynamic::new(Some(dir.join("dynamic"))),
            ..config(&dir)
        };
        assert!(get("/", &config).body.starts_with("hi from demo-app "));
        assert_eq!(get("/checkout", &config).body, "checkout: new flow\n");
        assert_eq!(
            get("/config", &config).body,
            "version 7\nflag new-checkout on\nsetting greeting \"hi\"\nsetting maintenance false\n"
        );
        assert_eq!(get("/health", &config).status, 200);
        fs::write(
            version.join("settings.json"),
            r#"{"greeting": "hi", "maintenance": true}"#,
        )
        .expect("settings");
        fs::write(version.join("VERSION"), "8\n").expect("version");
        assert_eq!(get("/health", &config).status, 503);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn parses_arguments() {
        let args = |s: &str| {
            s.split(' ')
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .into_iter()
        };
        let config =
            parse_args(args("--port 8080 --target beta-1 --config-dir /x --dynamic-config /d"))
                .expect("valid");
        assert_eq!((config.port, config.target.as_str()), (8080, "beta-1"));
        assert_eq!(config.config_dir, PathBuf::from("/x"));
        assert!(parse_args(args("--port 8080")).is_err());
        assert!(parse_args(args("--port x --target a")).is_err());
        assert!(parse_args(args("--port 1 --target ../a")).is_err());
    }
}
