//! Parity with real nginx: the same map file, served by nginx's `map $uri` + `return 302`, gives
//! the same `Location` as linkgate for every key variant and unknown path.
//!
//! Needs the `nginx` binary (Debian `nginx-light`): run with `--features nginx-tests`.
#![cfg(feature = "nginx-tests")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use linkgate::LinkTable;

struct Nginx {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its worker; SIGKILL would orphan the worker.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_nginx(map_file: &str) -> Nginx {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("linkgate-nginx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{\n  access_log off;\n  absolute_redirect off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n\
         include {map_file};\n  server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 302 $affiliate_url; }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|p| Command::new(p).arg("-v").output().is_ok())
        .expect("nginx binary");
    let child = Command::new(nginx)
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &dir.join("nginx.conf").display().to_string(),
            "-g",
            "daemon off;",
        ])
        .spawn()
        .expect("start nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start; see {}/error.log",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx { child, port, dir }
}

fn nginx_location(port: u16, path: &str) -> Option<String> {
    let resp = nginx_get(port, path);
    assert!(resp.starts_with("HTTP/1.1 302"), "{path}: {resp}");
    resp.lines()
        .find_map(|l| l.strip_prefix("Location: ").map(str::to_string))
}

fn nginx_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: links.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

#[test]
fn same_location_as_nginx_map() {
    let map_file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/links.map");
    let nginx = start_nginx(map_file);
    let set = linkgate::load_file(map_file).unwrap();
    let keys: Vec<String> = set.links.iter().map(|l| l.key().to_string()).collect();
    let table = LinkTable::from_links(set).unwrap();
    let mut paths = Vec::new();
    for k in &keys {
        paths.push(k.clone());
        paths.push(k.to_ascii_uppercase());
        paths.push(k.replace('-', "%2D").replace('o', "%6F"));
        paths.push(format!("{k}?ref=attacker&utm_source=x"));
        paths.push(format!("{}?", k.to_ascii_uppercase()));
    }
    for unknown in [
        "/",
        "/go/",
        "/go/nope",
        "/go/summer-deal-2",
        "/x?y=1",
        "/go/summer%252Ddeal",
        "/GO/SUMMER-DEAL-X",
    ] {
        paths.push(unknown.to_string());
    }
    let mut compared = 0;
    for p in &paths {
        let ours = table.resolve(p).location().to_str().unwrap().to_string();
        let theirs = nginx_location(nginx.port, p);
        assert_eq!(Some(ours), theirs, "path {p}");
        compared += 1;
    }
    assert_eq!(compared, keys.len() * 5 + 7);
    // The documented difference: a trailing `/` finds the link here, nginx's default there.
    let k = &keys[0];
    assert_eq!(
        nginx_location(nginx.port, &format!("{k}/")).as_deref(),
        Some("https://store.com/")
    );
    assert!(table.resolve(&format!("{k}/")).matched());
    // An invalid percent-escape: nginx answers 400, linkgate the default redirect.
    assert!(nginx_get(nginx.port, "/go/summer%2").starts_with("HTTP/1.1 400"));
    assert!(table.resolve("/go/summer%2").is_default());
}
