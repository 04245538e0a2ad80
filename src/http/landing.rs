//! The small page served to a plain HTTP request: what this server is, and a console to
//! try its WebSocket from the browser.

use super::request::Request;
use super::response::Response;

/// Answers a plain (non-upgrade) request: the page for `GET /` and `HEAD /`, 404 for any
/// other path, 405 for any other method. `title` names the server on the page.
pub fn respond(request: &Request, title: &str) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        let mut response =
            Response::text(405, format!("method {} not allowed here\n", request.method));
        response.header("Allow", "GET, HEAD");
        return response;
    }
    if request.path() != "/" {
        return Response::text(
            404,
            format!("nothing at {}; the page is at /\n", request.path()),
        );
    }
    let page = PAGE.replace("{title}", &escape_html(title));
    let mut response = Response::new(200, "text/html; charset=utf-8", page);
    response.header("Cache-Control", "no-cache");
    response
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page. Messages are shown with `textContent`, never parsed as HTML.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #log { border: 1px solid #ccc; border-radius: 4px; height: 16rem; overflow-y: auto; padding: .5rem; }
  #log div { white-space: pre-wrap; word-break: break-word; }
  .in { color: #064; } .out { color: #036; } .meta { color: #777; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  input { flex: 1; padding: .4rem; }
</style>
</head>
<body>
<h1>{title}</h1>
<p>A WebSocket server. Connect any client to <code id="url"></code>; this console is one.</p>
<p>Status: <strong id="status">connecting</strong></p>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Type a message, press Enter"><button>Send</button></form>
<script>
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
document.getElementById("url").textContent = url;
const log = (cls, text) => {
  const line = document.createElement("div");
  line.className = cls;
  line.textContent = text;
  const box = document.getElementById("log");
  box.append(line);
  box.scrollTop = box.scrollHeight;
};
const status = document.getElementById("status");
const ws = new WebSocket(url);
ws.onopen = () => { status.textContent = "open"; };
ws.onclose = (e) => { status.textContent = `closed (${e.code})`; };
ws.onmessage = (e) => log("in", typeof e.data === "string" ? `< ${e.data}` : "< (binary message)");
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  if (ws.readyState === WebSocket.OPEN && input.value) {
    ws.send(input.value);
    log("out", `> ${input.value}`);
    input.value = "";
  }
};
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeadLimits, parse_request};

    fn get(head: &str) -> Response {
        let (request, _) = parse_request(head.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap();
        respond(&request, "test <server>")
    }

    #[test]
    fn routes() {
        let page = get("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(page.status, 200);
        assert!(
            String::from_utf8(page.body)
                .unwrap()
                .contains("<title>test &lt;server&gt;</title>")
        );
        assert_eq!(get("GET /?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        assert_eq!(get("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
        let post = get("POST / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(post.status, 405);
        assert!(post.headers.contains(&("Allow", "GET, HEAD".to_owned())));
    }
}
