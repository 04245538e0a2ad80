//! The chat's web page, embedded in the binary so that the one command that starts the
//! server needs no other files: HTML, CSS and JavaScript with no build step.

use crate::http::{Request, Response};

/// The files, by path.
const FILES: [(&str, &str, &str); 4] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "/chat.css",
        "text/css; charset=utf-8",
        include_str!("page/chat.css"),
    ),
    (
        "/chat.js",
        "text/javascript; charset=utf-8",
        include_str!("page/chat.js"),
    ),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_str!("page/favicon.svg"),
    ),
];

/// Serves the page's files: GET and HEAD; 404 for other paths, 405 for other methods.
pub fn respond(request: &Request) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        let mut response =
            Response::text(405, format!("method {} not allowed here\n", request.method));
        response.header("Allow", "GET, HEAD");
        return response;
    }
    let path = match request.path() {
        "/index.html" => "/",
        "/favicon.ico" => "/favicon.svg",
        path => path,
    };
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => {
            let mut response = Response::new(200, content_type, *body);
            response
                .header("Cache-Control", "no-cache")
                .header("X-Content-Type-Options", "nosniff")
                // The page loads only its own files and talks only to its own server.
                .header(
                    "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:",
                );
            response
        }
        None => Response::text(
            404,
            format!("nothing at {}; the chat is at /\n", request.path()),
        ),
    }
}
