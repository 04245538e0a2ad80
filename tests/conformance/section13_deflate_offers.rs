//! Autobahn section 13: permessage-deflate with each of the offers Autobahn's fuzzing
//! client makes, the JSON corpus, and the same 18 message sizes and fragmentations as
//! section 12. Autobahn writes an offer as (requestNoContextTakeover,
//! requestMaxWindowBits): what the client *requests of the server*. Every one of its
//! offers also declares `client_no_context_takeover` and `client_max_window_bits`, so:
//!
//! | group | (requestNoContextTakeover, requestMaxWindowBits) | the header |
//! |---|---|---|
//! | 13.1 | (false, 0) | `permessage-deflate; client_no_context_takeover; client_max_window_bits` |
//! | 13.2 | (true, 0) | … `; server_no_context_takeover` |
//! | 13.3 | (false, 9) | … `; server_max_window_bits=9` |
//! | 13.4 | (false, 15) | … `; server_max_window_bits=15` |
//! | 13.5 | (true, 9) | … `; server_no_context_takeover; server_max_window_bits=9` |
//! | 13.6 | (true, 15) | … `; server_no_context_takeover; server_max_window_bits=15` |
//! | 13.7 | (true, 9), (true, 0), (false, 0) | the three offers, comma-separated |
//!
//! The client holds the server to what it asked: an answer that drops a requested
//! parameter fails the case, and the server's messages are inflated with exactly the
//! window it was granted (`permessage_deflate.rs`).
//!
//! 13.9.x are not Autobahn's (its section 13 ends at 13.7): the offers of other clients,
//! which set the *client's* parameters (a browser's, a bare one, window 8 and 15, no
//! context takeover, several at once, in separate headers) and two the server may
//! decline or must fall back from (`server_max_window_bits=8`, which zlib cannot do).
//! Each sends JSON messages of 16 bytes to 128 KiB, the largest in fragments.

use crate::echo_runs::autobahn_cases;
use crate::*;

/// Autobahn's `DEFLATE_PARAMS`, the client's side: the offers of 13.1 to 13.7.
fn autobahn_offers() -> [Vec<Offer>; 7] {
    [
        vec![Offer::autobahn(false, 0)],
        vec![Offer::autobahn(true, 0)],
        vec![Offer::autobahn(false, 9)],
        vec![Offer::autobahn(false, 15)],
        vec![Offer::autobahn(true, 9)],
        vec![Offer::autobahn(true, 15)],
        vec![
            Offer::autobahn(true, 9),
            Offer::autobahn(true, 0),
            Offer::autobahn(false, 0),
        ],
    ]
}

/// An offer of the client's own parameters only.
fn client_offer(no_context_takeover: bool, max_window_bits: Option<Option<u8>>) -> Offer {
    Offer {
        client_no_context_takeover: no_context_takeover,
        client_max_window_bits: max_window_bits,
        ..Offer::default()
    }
}

/// An offer that asks the server for a window of 2^`bits`.
fn server_window(bits: u8) -> Offer {
    Offer {
        server_max_window_bits: Some(bits),
        ..Offer::default()
    }
}

/// 13.9.x: a case per offering, each a few runs of JSON messages.
fn other_offers() -> Vec<Case> {
    let offerings: Vec<(&str, Offering)> = vec![
        ("a browser's", Offering::accepted([Offer::browser()])),
        ("a bare", Offering::accepted([Offer::bare()])),
        (
            "client_no_context_takeover",
            Offering::accepted([client_offer(true, None)]),
        ),
        (
            "client_max_window_bits=8",
            Offering::accepted([client_offer(false, Some(Some(8)))]),
        ),
        (
            "client_max_window_bits=15",
            Offering::accepted([client_offer(false, Some(Some(15)))]),
        ),
        (
            "client_no_context_takeover with client_max_window_bits=8",
            Offering::accepted([client_offer(true, Some(Some(8)))]),
        ),
        (
            "client_no_context_takeover with client_max_window_bits=15",
            Offering::accepted([client_offer(true, Some(Some(15)))]),
        ),
        (
            "three client offers (window 8 without context, any window, bare)",
            Offering::accepted([
                client_offer(true, Some(Some(8))),
                client_offer(false, Some(None)),
                Offer::bare(),
            ]),
        ),
        (
            "two offers in two headers (Autobahn's (true, 10), then bare)",
            Offering {
                separate_headers: true,
                ..Offering::accepted([Offer::autobahn(true, 10), Offer::bare()])
            },
        ),
        (
            "a server_max_window_bits=8 (may be declined: then nothing is compressed)",
            Offering {
                must_accept: false,
                ..Offering::accepted([server_window(8)])
            },
        ),
        (
            "server_max_window_bits=8 then =10 (one of them accepted)",
            Offering::accepted([server_window(8), server_window(10)]),
        ),
    ];
    offerings
        .into_iter()
        .enumerate()
        .map(|(i, (name, offering))| {
            let runs: Vec<Step> = [(16, 0), (1024, 0), (65536, 0), (131_072, 4096)]
                .into_iter()
                .map(|(len, fragment)| Step::Echo(EchoRun::new(Corpus::Json, len, fragment)))
                .collect();
            case(
                format!("13.9.{}", i + 1),
                format!("{name} offer, JSON messages of 16 B to 128 KiB; {offering}"),
                steps![runs, clean_close()],
            )
            .offering(offering)
        })
        .collect()
}

pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, offers) in autobahn_offers().into_iter().enumerate() {
        let offering = Offering::accepted(offers);
        cases.extend(autobahn_cases(
            &format!("13.{}", i + 1),
            Corpus::Json,
            &offering,
        ));
    }
    cases.extend(other_offers());
    cases
}

#[test]
fn section13_deflate_offers() {
    run_section("13 (permessage-deflate, offers)", cases());
}
