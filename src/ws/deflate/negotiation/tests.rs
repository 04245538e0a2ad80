//! Tests of the grammar, of every RFC 7692 §7.1 parameter rule in both roles, and of
//! the server's answer always passing the client's check.

use super::*;
use proptest::prelude::*;
use std::borrow::Cow;

const PMD: &str = "permessage-deflate";
/// The answer to a plain offer under the default config.
const PLAIN_ANSWER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

fn answer_with(
    headers: &[&str],
    config: &DeflateConfig,
) -> Result<Negotiation, MalformedExtensions> {
    negotiate(headers.iter().map(|h| h.as_bytes()), config)
}

/// The response header the default server sends for `headers`, or `None` on decline.
fn answer(headers: &[&str]) -> Option<String> {
    answer_config(headers, &DeflateConfig::default())
}

fn answer_config(headers: &[&str], config: &DeflateConfig) -> Option<String> {
    match answer_with(headers, config).expect("malformed") {
        Negotiation::Accept(accepted) => Some(accepted.response_header),
        Negotiation::Decline(_) => None,
    }
}

fn declined(headers: &[&str]) -> Vec<Declined> {
    match answer_with(headers, &DeflateConfig::default()).expect("malformed") {
        Negotiation::Accept(accepted) => panic!("accepted: {accepted:?}"),
        Negotiation::Decline(reasons) => reasons,
    }
}

fn offer(params: &str) -> Result<DeflateOffer, ParamError> {
    let header = format!("{PMD}{params}");
    let list = parse_extensions(header.as_bytes()).expect("malformed");
    DeflateOffer::from_params(&list[0].params)
}

fn param<'a>(name: &'a str, value: Option<&'a str>) -> Param<'a> {
    Param {
        name,
        value: value.map(Cow::Borrowed),
    }
}

// The grammar (RFC 6455 §9.1).

#[test]
fn parses_lists_parameters_and_values() {
    let list = parse_extensions(b"foo, permessage-deflate; a; b=1 ,bar;c=\"x\"").unwrap();
    assert_eq!(
        list,
        vec![
            Extension {
                name: "foo",
                params: vec![],
            },
            Extension {
                name: PMD,
                params: vec![param("a", None), param("b", Some("1"))],
            },
            Extension {
                name: "bar",
                params: vec![param("c", Some("x"))],
            },
        ]
    );
}

#[test]
fn white_space_may_stand_between_any_two_tokens() {
    let tight = parse_extensions(b"a;b=1;c,d").unwrap();
    for loose in [
        "  a ; b = 1 ; c , d  ",
        "a\t;\tb\t=\t1;c,\td",
        "a ;b= \"1\"; c ,d",
    ] {
        assert_eq!(
            parse_extensions(loose.as_bytes()).unwrap(),
            tight,
            "{loose}"
        );
    }
}

#[test]
fn quoted_values_are_unquoted_and_unescaped() {
    let list = parse_extensions(br#"x; a="10"; b="\1\5"; c="a\-b""#).unwrap();
    let values: Vec<_> = list[0].params.iter().map(|p| p.value.as_deref()).collect();
    assert_eq!(values, [Some("10"), Some("15"), Some("a-b")]);
}

#[test]
fn empty_list_elements_are_skipped() {
    assert_eq!(parse_extensions(b"").unwrap(), vec![]);
    assert_eq!(parse_extensions(b" , ,, ").unwrap(), vec![]);
    let names: Vec<_> = parse_extensions(b", a,, b ,")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn grammar_errors_say_what_and_where() {
    use Syntax::*;
    let cases: &[(&str, usize, Syntax)] = &[
        (";a", 0, ExpectedExtensionName),
        ("a, ;b", 3, ExpectedExtensionName),
        ("=", 0, ExpectedExtensionName),
        ("\"a\"", 0, ExpectedExtensionName),
        ("a;", 2, ExpectedParameterName),
        ("a; ;b", 3, ExpectedParameterName),
        ("a;=1", 2, ExpectedParameterName),
        ("a;b=", 4, ExpectedValue),
        ("a;b= ;c", 5, ExpectedValue),
        ("a;b=,", 4, ExpectedValue),
        ("a b", 2, ExpectedSeparator),
        ("a;b c", 4, ExpectedSeparator),
        ("a;b=1 2", 6, ExpectedSeparator),
        ("a;b=1=2", 5, ExpectedSeparator),
        ("a;b=\"1\"2", 7, ExpectedSeparator),
        ("a\r\n", 1, ExpectedSeparator),
        ("a/b", 1, ExpectedSeparator),
        ("caf\u{e9}", 3, ExpectedSeparator),
        ("a;b=\"1", 4, UnterminatedQuote),
        ("a;b=\"1\\\"", 4, UnterminatedQuote),
        ("a;b=\"1\\", 4, UnterminatedQuote),
        ("a;b=\"\"", 4, QuotedValueNotToken),
        ("a;b=\"1 0\"", 4, QuotedValueNotToken),
        ("a;b=\"1,0\"", 4, QuotedValueNotToken),
        ("a;b=\"\\\"\"", 4, QuotedValueNotToken),
        ("a;b=\"\u{e9}\"", 4, QuotedValueNotToken),
    ];
    for &(text, at, problem) in cases {
        assert_eq!(
            parse_extensions(text.as_bytes()),
            Err(MalformedExtensions { at, problem }),
            "{text:?}"
        );
    }
    assert_eq!(
        MalformedExtensions {
            at: 2,
            problem: ExpectedParameterName
        }
        .to_string(),
        "malformed Sec-WebSocket-Extensions header: expected a parameter name after ';' at byte 2"
    );
}

// The parameters of an offer (RFC 7692 §7.1).

#[test]
fn every_parameter_is_read() {
    assert_eq!(offer(""), Ok(DeflateOffer::default()));
    let cases = [
        (
            "; server_no_context_takeover",
            DeflateOffer {
                server_no_context_takeover: true,
                ..DeflateOffer::default()
            },
        ),
        (
            "; client_no_context_takeover",
            DeflateOffer {
                client_no_context_takeover: true,
                ..DeflateOffer::default()
            },
        ),
        (
            "; server_max_window_bits=10",
            DeflateOffer {
                server_max_window_bits: Some(10),
                ..DeflateOffer::default()
            },
        ),
        (
            "; client_max_window_bits",
            DeflateOffer {
                client_max_window_bits: ClientWindowOffer::Supported,
                ..DeflateOffer::default()
            },
        ),
        (
            "; client_max_window_bits=8",
            DeflateOffer {
                client_max_window_bits: ClientWindowOffer::Hint(8),
                ..DeflateOffer::default()
            },
        ),
        (
            "; client_max_window_bits=15; server_max_window_bits=\"9\"; \
             client_no_context_takeover; server_no_context_takeover",
            DeflateOffer {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(9),
                client_max_window_bits: ClientWindowOffer::Hint(15),
            },
        ),
    ];
    for (params, expected) in cases {
        assert_eq!(offer(params), Ok(expected), "{params}");
    }
}

#[test]
fn window_bits_are_8_to_15_in_decimal_without_leading_zeroes() {
    for bits in 8..=15u8 {
        assert_eq!(
            offer(&format!("; server_max_window_bits={bits}")).map(|o| o.server_max_window_bits),
            Ok(Some(bits))
        );
        assert_eq!(
            offer(&format!("; client_max_window_bits=\"{bits}\""))
                .map(|o| o.client_max_window_bits),
            Ok(ClientWindowOffer::Hint(bits))
        );
    }
    for bad in [
        "0", "7", "16", "08", "015", "+9", "9.0", "0x9", "1e1", "nine", "255", "256",
    ] {
        for name in [
            ParamName::ServerMaxWindowBits,
            ParamName::ClientMaxWindowBits,
        ] {
            assert_eq!(
                offer(&format!("; {name}={bad}")),
                Err(ParamError::BadWindowBits {
                    param: name,
                    value: bad.into()
                }),
                "{name}={bad}"
            );
        }
    }
}

#[test]
fn every_invalid_offer_is_named() {
    use ParamName::*;
    let cases = [
        ("; x", ParamError::Unknown("x".into())),
        (
            "; server_max_window_bits=10; mux",
            ParamError::Unknown("mux".into()),
        ),
        // Names compare exactly (see the module docs).
        (
            "; Server_No_Context_Takeover",
            ParamError::Unknown("Server_No_Context_Takeover".into()),
        ),
        (
            "; server_no_context_takeover=1",
            ParamError::UnexpectedValue(ServerNoContextTakeover),
        ),
        (
            "; client_no_context_takeover=\"x\"",
            ParamError::UnexpectedValue(ClientNoContextTakeover),
        ),
        (
            "; server_max_window_bits",
            ParamError::MissingValue(ServerMaxWindowBits),
        ),
        (
            "; server_no_context_takeover; server_no_context_takeover",
            ParamError::Repeated(ServerNoContextTakeover),
        ),
        (
            "; client_no_context_takeover; client_no_context_takeover",
            ParamError::Repeated(ClientNoContextTakeover),
        ),
        (
            "; server_max_window_bits=10; server_max_window_bits=10",
            ParamError::Repeated(ServerMaxWindowBits),
        ),
        (
            "; client_max_window_bits; client_max_window_bits=10",
            ParamError::Repeated(ClientMaxWindowBits),
        ),
    ];
    for (params, expected) in cases {
        assert_eq!(offer(params), Err(expected), "{params}");
    }
    assert_eq!(
        ParamError::Repeated(ClientMaxWindowBits).to_string(),
        "client_max_window_bits given more than once"
    );
}

// The server's answer.

#[test]
fn what_browsers_offer_is_accepted_without_context_takeover() {
    // Chrome, Firefox and Safari send the first; some clients send the bare name.
    for offer in ["permessage-deflate; client_max_window_bits", PMD] {
        let Ok(Negotiation::Accept(accepted)) = answer_with(&[offer], &DeflateConfig::default())
        else {
            panic!("{offer} declined")
        };
        assert_eq!(accepted.response_header, PLAIN_ANSWER);
        assert_eq!(
            accepted.negotiated,
            Negotiated {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            }
        );
    }
}

#[test]
fn each_offered_parameter_is_answered() {
    let cases = [
        ("; server_no_context_takeover", PLAIN_ANSWER.to_owned()),
        ("; client_no_context_takeover", PLAIN_ANSWER.to_owned()),
        // An offered server limit is echoed, even 15 (§7.1.2.1).
        (
            "; server_max_window_bits=15",
            format!("{PLAIN_ANSWER}; server_max_window_bits=15"),
        ),
        (
            "; server_max_window_bits=9",
            format!("{PLAIN_ANSWER}; server_max_window_bits=9"),
        ),
        (
            "; server_max_window_bits=\"12\"",
            format!("{PLAIN_ANSWER}; server_max_window_bits=12"),
        ),
        // A client hint below 15 is echoed, so both sides know the window (§7.1.2.2).
        (
            "; client_max_window_bits=10",
            format!("{PLAIN_ANSWER}; client_max_window_bits=10"),
        ),
        ("; client_max_window_bits=15", PLAIN_ANSWER.to_owned()),
    ];
    for (params, expected) in cases {
        assert_eq!(
            answer(&[&format!("{PMD}{params}")]),
            Some(expected),
            "{params}"
        );
    }
}

#[test]
fn the_server_window_is_the_smaller_of_its_own_and_the_offered() {
    let config = DeflateConfig {
        server_max_window_bits: 12,
        ..DeflateConfig::default()
    };
    let cases = [
        // Stated unasked, so the client may inflate with less (§7.1.2.1).
        ("", "12"),
        ("; server_max_window_bits=14", "12"),
        ("; server_max_window_bits=12", "12"),
        ("; server_max_window_bits=10", "10"),
    ];
    for (params, bits) in cases {
        assert_eq!(
            answer_config(&[&format!("{PMD}{params}")], &config),
            Some(format!("{PLAIN_ANSWER}; server_max_window_bits={bits}")),
            "{params}"
        );
    }
    // Out-of-range settings are taken as the nearest possible.
    for (setting, stated) in [(0, Some(9)), (8, Some(9)), (200, None)] {
        let config = DeflateConfig {
            server_max_window_bits: setting,
            ..DeflateConfig::default()
        };
        let Ok(Negotiation::Accept(accepted)) = answer_with(&[PMD], &config) else {
            panic!("declined")
        };
        assert_eq!(
            accepted.negotiated.server_max_window_bits,
            stated.unwrap_or(15),
            "{setting}"
        );
    }
}

#[test]
fn the_client_window_is_limited_only_when_offered() {
    let config = DeflateConfig {
        client_max_window_bits: 12,
        ..DeflateConfig::default()
    };
    let cases = [
        // §7.1.2.2: no parameter in the offer, none in the answer.
        ("", None),
        ("; client_max_window_bits", Some(12)),
        ("; client_max_window_bits=14", Some(12)),
        ("; client_max_window_bits=10", Some(10)),
    ];
    for (params, bits) in cases {
        let expected = match bits {
            Some(bits) => format!("{PLAIN_ANSWER}; client_max_window_bits={bits}"),
            None => PLAIN_ANSWER.to_owned(),
        };
        assert_eq!(
            answer_config(&[&format!("{PMD}{params}")], &config),
            Some(expected)
        );
    }
    let low = DeflateConfig {
        client_max_window_bits: 3,
        ..DeflateConfig::default()
    };
    assert_eq!(
        answer_config(&["permessage-deflate; client_max_window_bits"], &low),
        Some(format!("{PLAIN_ANSWER}; client_max_window_bits=8"))
    );
}

#[test]
fn context_takeover_is_kept_only_when_the_config_allows_and_the_client_does_not_ask() {
    let keeps_both = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        ..DeflateConfig::default()
    };
    let cases = [
        ("", "permessage-deflate"),
        (
            "; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            "; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        ),
    ];
    for (params, expected) in cases {
        assert_eq!(
            answer_config(&[&format!("{PMD}{params}")], &keeps_both).as_deref(),
            Some(expected)
        );
    }
}

#[test]
fn server_window_8_is_accepted_and_honoured_by_sending_plain() {
    let header = "permessage-deflate; server_max_window_bits=8; client_max_window_bits, \
                  permessage-deflate; client_max_window_bits";
    assert_eq!(
        answer(&[header]),
        Some(format!("{PLAIN_ANSWER}; server_max_window_bits=8"))
    );
    let Ok(Negotiation::Accept(accepted)) = answer_with(&[header], &DeflateConfig::default())
    else {
        panic!("declined")
    };
    let n = accepted.negotiated;
    assert!(
        !n.outgoing(Role::Server).can_compress(),
        "the server sends plain"
    );
    assert!(
        n.incoming(Role::Server).can_compress(),
        "the client may compress"
    );
}

#[test]
fn the_first_acceptable_offer_wins() {
    // RFC 7692 §5.1's example: the first offer is acceptable, so it is taken.
    assert_eq!(
        answer(&[
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
                  permessage-deflate; client_max_window_bits"
        ]),
        Some(format!("{PLAIN_ANSWER}; server_max_window_bits=10"))
    );
    // Invalid offers are declined in turn, and their reasons kept.
    let headers = [
        "x-webkit-deflate-frame, permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=11, permessage-deflate",
    ];
    assert_eq!(
        answer(&headers),
        Some(format!("{PLAIN_ANSWER}; server_max_window_bits=11"))
    );
    assert_eq!(
        declined(&headers[..2]),
        [
            Declined::Invalid(ParamError::Unknown("foo".into())),
            Declined::Invalid(ParamError::BadWindowBits {
                param: ParamName::ServerMaxWindowBits,
                value: "16".into()
            }),
        ]
    );
}

#[test]
fn offers_in_several_headers_are_one_list() {
    assert_eq!(
        answer(&["foo", "permessage-deflate; server_max_window_bits=13", PMD]),
        Some(format!("{PLAIN_ANSWER}; server_max_window_bits=13"))
    );
    assert_eq!(answer(&["", "foo;bar=1", " , "]), None);
}

#[test]
fn other_extensions_and_other_cases_are_skipped() {
    assert_eq!(declined(&[]), []);
    assert_eq!(
        declined(&["x-webkit-deflate-frame; no_context_takeover"]),
        []
    );
    assert_eq!(declined(&["Permessage-Deflate", "PERMESSAGE-DEFLATE"]), []);
    assert_eq!(
        answer(&["deflate-frame, permessage-deflate"]),
        Some(PLAIN_ANSWER.to_owned())
    );
}

#[test]
fn a_malformed_header_is_refused_wherever_it_stands() {
    let config = DeflateConfig::default();
    let malformed = |headers: &[&str]| answer_with(headers, &config).map(|_| ()).unwrap_err();
    assert_eq!(
        malformed(&["permessage-deflate;"]).problem,
        Syntax::ExpectedParameterName
    );
    // After an acceptable offer, in another header, in another extension's parameters.
    assert_eq!(
        malformed(&["permessage-deflate, foo bar"]).problem,
        Syntax::ExpectedSeparator
    );
    assert_eq!(
        malformed(&[PMD, "foo;a=\"b"]).problem,
        Syntax::UnterminatedQuote
    );
    assert_eq!(
        malformed(&["permessage-deflate; server_max_window_bits=\"1 0\""]).problem,
        Syntax::QuotedValueNotToken
    );
}

#[test]
fn disabled_reads_nothing() {
    let off = DeflateConfig {
        enabled: false,
        ..DeflateConfig::default()
    };
    for header in [PMD, "permessage-deflate;;", "\u{0}"] {
        assert_eq!(
            answer_with(&[header], &off),
            Ok(Negotiation::Decline(vec![]))
        );
    }
}

// The client's side.

fn check(offer: &DeflateOffer, response: &[&str]) -> Result<Option<Negotiated>, ResponseError> {
    offer.check_response(response.iter().map(|h| h.as_bytes()))
}

#[test]
fn offers_are_written_as_they_are_read() {
    assert_eq!(DeflateOffer::default().to_string(), PMD);
    assert_eq!(
        DeflateOffer::client_default().to_string(),
        "permessage-deflate; client_max_window_bits"
    );
    let full = DeflateOffer {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: Some(10),
        client_max_window_bits: ClientWindowOffer::Hint(9),
    };
    assert_eq!(
        full.to_string(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits=9"
    );
    assert_eq!(offer(&full.to_string()[PMD.len()..]), Ok(full));
}

#[test]
fn a_response_without_the_extension_is_a_decline() {
    let offer = DeflateOffer::client_default();
    assert_eq!(check(&offer, &[]), Ok(None));
    assert_eq!(check(&offer, &["", " , "]), Ok(None));
}

#[test]
fn valid_responses_give_the_parameters_in_effect() {
    let negotiated = |snct, cnct, smwb, cmwb| {
        Ok(Some(Negotiated {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: smwb,
            client_max_window_bits: cmwb,
        }))
    };
    let bare = DeflateOffer::default();
    let supports = DeflateOffer::client_default();
    let hinted = DeflateOffer {
        client_max_window_bits: ClientWindowOffer::Hint(12),
        client_no_context_takeover: true,
        ..DeflateOffer::default()
    };
    let limited = DeflateOffer {
        server_max_window_bits: Some(12),
        server_no_context_takeover: true,
        ..DeflateOffer::default()
    };
    let cases = [
        (bare, PMD, negotiated(false, false, 15, 15)),
        // Either context takeover and a server window may be stated unasked.
        (bare, PLAIN_ANSWER, negotiated(true, true, 15, 15)),
        (
            bare,
            "permessage-deflate; server_max_window_bits=8",
            negotiated(false, false, 8, 15),
        ),
        (
            supports,
            "permessage-deflate;client_max_window_bits=\"10\"",
            negotiated(false, false, 15, 10),
        ),
        // Our hints bind us even unechoed; a limit at or below them is taken.
        (hinted, PMD, negotiated(false, true, 15, 12)),
        (
            hinted,
            "permessage-deflate; client_max_window_bits=9",
            negotiated(false, true, 15, 9),
        ),
        (
            hinted,
            "permessage-deflate; client_max_window_bits=12",
            negotiated(false, true, 15, 12),
        ),
        (
            limited,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
            negotiated(true, false, 12, 15),
        ),
        (
            limited,
            "permessage-deflate; server_max_window_bits=9; server_no_context_takeover",
            negotiated(true, false, 9, 15),
        ),
    ];
    for (offer, response, expected) in cases {
        assert_eq!(check(&offer, &[response]), expected, "{offer} / {response}");
    }
}

#[test]
fn every_unacceptable_response_fails() {
    use ParamName::*;
    let supports = DeflateOffer::client_default();
    let hinted = DeflateOffer {
        client_max_window_bits: ClientWindowOffer::Hint(10),
        ..DeflateOffer::default()
    };
    let limited = DeflateOffer {
        server_max_window_bits: Some(10),
        server_no_context_takeover: true,
        ..DeflateOffer::default()
    };
    let cases: Vec<(DeflateOffer, &[&str], ResponseError)> = vec![
        (
            supports,
            &["permessage-deflate;"],
            ResponseError::Malformed(MalformedExtensions {
                at: 19,
                problem: Syntax::ExpectedParameterName,
            }),
        ),
        (
            supports,
            &["x-webkit-deflate-frame"],
            ResponseError::NotOffered("x-webkit-deflate-frame".into()),
        ),
        (
            supports,
            &["Permessage-Deflate"],
            ResponseError::NotOffered("Permessage-Deflate".into()),
        ),
        (
            supports,
            &[PMD, "foo"],
            ResponseError::NotOffered("foo".into()),
        ),
        (
            supports,
            &["permessage-deflate, permessage-deflate"],
            ResponseError::Repeated,
        ),
        (supports, &[PMD, PMD], ResponseError::Repeated),
        (
            supports,
            &["permessage-deflate; foo"],
            ParamError::Unknown("foo".into()).into(),
        ),
        (
            supports,
            &["permessage-deflate; server_no_context_takeover=x"],
            ParamError::UnexpectedValue(ServerNoContextTakeover).into(),
        ),
        (
            supports,
            &["permessage-deflate; client_no_context_takeover; client_no_context_takeover"],
            ParamError::Repeated(ClientNoContextTakeover).into(),
        ),
        (
            supports,
            &["permessage-deflate; server_max_window_bits"],
            ParamError::MissingValue(ServerMaxWindowBits).into(),
        ),
        (
            supports,
            &["permessage-deflate; server_max_window_bits=16"],
            ParamError::BadWindowBits {
                param: ServerMaxWindowBits,
                value: "16".into(),
            }
            .into(),
        ),
        // A response's client_max_window_bits must have a value (§7.1.2.2).
        (
            supports,
            &["permessage-deflate; client_max_window_bits"],
            ParamError::MissingValue(ClientMaxWindowBits).into(),
        ),
        (
            supports,
            &["permessage-deflate; client_max_window_bits=7"],
            ParamError::BadWindowBits {
                param: ClientMaxWindowBits,
                value: "7".into(),
            }
            .into(),
        ),
        (
            DeflateOffer::default(),
            &["permessage-deflate; client_max_window_bits=10"],
            ResponseError::ClientWindowNotOffered,
        ),
        (
            hinted,
            &["permessage-deflate; client_max_window_bits=11"],
            ResponseError::ClientWindowTooLarge {
                offered: 10,
                answered: 11,
            },
        ),
        (
            limited,
            &["permessage-deflate; server_max_window_bits=10"],
            ResponseError::ServerContextTakeover,
        ),
        (
            limited,
            &["permessage-deflate; server_no_context_takeover"],
            ResponseError::ServerWindowMissing(10),
        ),
        (
            limited,
            &["permessage-deflate; server_no_context_takeover; server_max_window_bits=11"],
            ResponseError::ServerWindowTooLarge {
                offered: 10,
                answered: 11,
            },
        ),
    ];
    for (offer, response, expected) in cases {
        assert_eq!(
            check(&offer, response),
            Err(expected),
            "{offer} / {response:?}"
        );
    }
}

#[test]
fn directions_follow_the_role() {
    let negotiated = Negotiated {
        server_no_context_takeover: true,
        client_no_context_takeover: false,
        server_max_window_bits: 12,
        client_max_window_bits: 8,
    };
    let server = Direction {
        window_bits: 12,
        no_context_takeover: true,
    };
    let client = Direction {
        window_bits: 8,
        no_context_takeover: false,
    };
    assert_eq!(negotiated.outgoing(Role::Server), server);
    assert_eq!(negotiated.incoming(Role::Client), server);
    assert_eq!(negotiated.outgoing(Role::Client), client);
    assert_eq!(negotiated.incoming(Role::Server), client);
    // A server that limits the client to 8 bits gets uncompressed messages from us.
    assert!(server.can_compress() && !client.can_compress());
}

// Properties.

fn window() -> impl Strategy<Value = u8> {
    MIN_WINDOW_BITS..=MAX_WINDOW_BITS
}

fn any_offer() -> impl Strategy<Value = DeflateOffer> {
    let client_window = prop_oneof![
        Just(ClientWindowOffer::Absent),
        Just(ClientWindowOffer::Supported),
        window().prop_map(ClientWindowOffer::Hint),
    ];
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(window()),
        client_window,
    )
        .prop_map(|(snct, cnct, smwb, cmwb)| DeflateOffer {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: smwb,
            client_max_window_bits: cmwb,
        })
}

fn any_config() -> impl Strategy<Value = DeflateConfig> {
    (any::<bool>(), any::<bool>(), 0u8..20, 0u8..20).prop_map(|(snct, cnct, smwb, cmwb)| {
        DeflateConfig {
            enabled: true,
            server_max_window_bits: smwb,
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            client_max_window_bits: cmwb,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// No bytes make the parser or the negotiation panic, on either side.
    #[test]
    fn arbitrary_headers_never_panic(
        bytes in prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(b" \t,;=\"\\abx_-19".to_vec()),
                1 => any::<u8>(),
            ],
            0..48,
        ),
        config in any_config(),
        offer in any_offer(),
    ) {
        let _ = negotiate([bytes.as_slice()], &config);
        let _ = offer.check_response([bytes.as_slice()]);
        // Spliced into a valid offer, they reach the parameter rules too.
        let spliced = [b"permessage-deflate; ".as_slice(), &bytes].concat();
        let _ = negotiate([spliced.as_slice()], &config);
        let _ = offer.check_response([spliced.as_slice()]);
    }

    /// Whatever a client offers and however the server is set up, an accepted answer
    /// passes the client's check with the same parameters, and keeps to the offer.
    #[test]
    fn the_server_answer_passes_the_client_check(offer in any_offer(), config in any_config()) {
        let header = offer.to_string();
        let result = negotiate([header.as_bytes()], &config).unwrap();
        match result {
            Negotiation::Decline(reasons) => prop_assert!(false, "declined: {:?}", reasons),
            Negotiation::Accept(accepted) => {
                let checked = offer.check_response([accepted.response_header.as_bytes()]);
                prop_assert_eq!(checked, Ok(Some(accepted.negotiated)));
                let n = accepted.negotiated;
                prop_assert_eq!(
                    n.outgoing(Role::Server).can_compress(),
                    offer.server_max_window_bits != Some(8)
                );
                let server_limit = offer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
                prop_assert!(n.server_max_window_bits <= server_limit);
                if let ClientWindowOffer::Hint(hint) = offer.client_max_window_bits {
                    prop_assert!(n.client_max_window_bits <= hint);
                }
                prop_assert!(n.server_no_context_takeover || !offer.server_no_context_takeover);
                prop_assert!(n.client_no_context_takeover || !offer.client_no_context_takeover);
            }
        }
    }

    /// An offer written with any white space, quoting and empty elements reads back
    /// as the same offer.
    #[test]
    fn offers_read_back_however_they_are_spaced(
        offer in any_offer(),
        spaces in prop::collection::vec(prop::sample::select(vec!["", " ", "\t", "  "]), 16),
        quote in any::<bool>(),
    ) {
        let mut spaces = spaces.into_iter().cycle();
        let mut space = move || spaces.next().unwrap_or_default();
        let mut text = format!(",{}", space());
        for (i, part) in offer.to_string().split("; ").enumerate() {
            if i > 0 {
                text += &format!("{};{}", space(), space());
            }
            match part.split_once('=') {
                Some((name, value)) if quote => {
                    text += &format!("{name}{}={}\"{value}\"", space(), space());
                }
                _ => text += part,
            }
        }
        text.push_str(" ,");
        let list = parse_extensions(text.as_bytes()).unwrap();
        prop_assert_eq!(list.len(), 1);
        prop_assert_eq!(DeflateOffer::from_params(&list[0].params), Ok(offer));
    }
}
