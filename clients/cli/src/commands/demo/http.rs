//! GET from the demo's local copies of the service, to show what they
//! answer (plain HTTP/1.1 on 127.0.0.1, one request per connection).

use std::io::{Read, Write};
use std::time::Duration;

/// The body of `GET path` from the service on 127.0.0.1:`port`.
pub fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}
