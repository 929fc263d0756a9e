//! The direct reading of an OFREP body answers exactly what the `Value` tree did: the same
//! context, or the same error code and details, body for body.

use serde_json::json;

use super::{ofrep_context, tree_context};
use crate::flags::{ErrorCode, EvaluationContext};

/// Bodies of every shape the endpoint may meet: good ones, each error, repeated keys,
/// escaped keys, nested and odd values, broken JSON at every depth, raw-value keys.
const BODIES: &[&str] = &[
    "",
    "null",
    " null ",
    "{}",
    r#"{"context":{}}"#,
    r#"{"context":null}"#,
    r#"{"context":{"targetingKey":"client-1","region":"eu"}}"#,
    r#"{"context":{"targetingKey":"u-1","environment":"staging","plan":"pro","n":7,"ok":true}}"#,
    r#"{"context":{"targetingKey":null,"region":"eu"}}"#,
    r#"{"context":{"targetingKey":7}}"#,
    r#"{"context":{"targetingKey":["a"]}}"#,
    r#"{"context":{"targetingKey":{"a":1}}}"#,
    r#"{"context":{"targetingKey":"a","targetingKey":"b"}}"#,
    r#"{"context":{"targetingKey":7,"targetingKey":"b"}}"#,
    r#"{"context":{"targetingKey":"b","targetingKey":7}}"#,
    r#"{"context":{"environment":7}}"#,
    r#"{"context":{"environment":"a","environment":"b"}}"#,
    r#"{"context":{"region":"eu","region":"us"}}"#,
    r#"{"context":{"targeting_key":"snake"}}"#,
    r#"{"context":{"context":{"targetingKey":"inner"}}}"#,
    r#"{"context":{"nested":{"deep":[1,2,{"x":null}]},"f":1.5e3,"neg":-4}}"#,
    r#"{"context":{"t\u0061rgetingKey":"escaped-key"}}"#,
    r#"{"cont\u0065xt":{"targetingKey":"escaped-member"}}"#,
    r#"{"context":{"name":"caf\u00e9 \ud83d\ude00"}}"#,
    r#"{"context":["u-1"]}"#,
    r#"{"context":"u-1"}"#,
    r#"{"context":7}"#,
    r#"{"context":true}"#,
    r#"{"context":[],"context":{"targetingKey":"last"}}"#,
    r#"{"context":{"targetingKey":"first"},"context":"last"}"#,
    r#"{"context":{"targetingKey":"first"},"context":null}"#,
    r#"{"other":1,"context":{"targetingKey":"x"},"more":[1,{"a":"b"}]}"#,
    r#"{"flags":["a"]}"#,
    "[]",
    "[1,2]",
    r#"["context",{"targetingKey":"x"}]"#,
    "7",
    "-1.5",
    r#""text""#,
    "true",
    "false",
    // Broken, at every depth, and values the tree refuses.
    r#"{"context": "#,
    r#"{"context":{"targetingKey":"x""#,
    r#"{"context":{"targetingKey":"x",}}"#,
    r#"{"context":{"targetingKey" "x"}}"#,
    r#"{"context":{7:"x"}}"#,
    r#"{"context":{}} trailing"#,
    r#"{"context":{}}}"#,
    r#"{"a":1e400,"context":{}}"#,
    r#"{"context":{"big":1e400}}"#,
    r#"{"context":{"targetingKey":"x"},"a":[1e400]}"#,
    "[1e400]",
    "1e400",
    r#"{"context":{"k":"\ud800"}}"#,
    r#"{"context":{"k":"bad \x escape"}}"#,
    "{\"context\":{\"k\":\"raw\u{1}control\"}}",
    r#"{"context":{"k":01}}"#,
    r#"{"context":{"k":nul}}"#,
    "nul",
    "{",
    "}",
    r#"{"context":[1,2"#,
    r#"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
    // serde_json's raw-value token as a key: the tree reads the string after it as JSON.
    r#"{"$serde_json::private::RawValue":"null"}"#,
    r#"{"$serde_json::private::RawValue":"[1]"}"#,
    r#"{"$serde_json::private::RawValue":"{\"context\":{\"targetingKey\":\"raw\"}}"}"#,
    r#"{"$serde_json::private::RawValue":7}"#,
    r#"{"$serde_json::private::RawValue":"null","context":{}}"#,
    r#"{"context":{"$serde_json::private::RawValue":"{\"targetingKey\":\"raw\"}"}}"#,
    r#"{"context":{"$serde_json::private::RawValue":"[1]"}}"#,
    r#"{"context":{"targetingKey":"x","$serde_json::private::RawValue":"[1]"}}"#,
    r#"{"context":{"a":{"$serde_json::private::RawValue":"[1"}}}"#,
];

#[test]
fn the_direct_reading_answers_what_the_tree_did_for_every_body() {
    for body in BODIES {
        let direct = ofrep_context(body.as_bytes());
        let tree = tree_context(body.as_bytes());
        assert_eq!(direct, tree, "body: {body}");
    }
}

#[test]
fn the_cases_the_endpoint_documents_answer_as_documented() {
    let read = |body: &str| ofrep_context(body.as_bytes());
    let context =
        read(r#"{"context":{"targetingKey":"u-1","environment":"staging","plan":"pro"}}"#)
            .expect("a good body");
    assert_eq!(
        context,
        EvaluationContext {
            targeting_key: Some("u-1".into()),
            environment: Some("staging".into()),
            attributes: serde_json::from_value(json!({"environment":"staging","plan":"pro"}))
                .unwrap(),
        }
    );
    assert_eq!(read("null"), Ok(EvaluationContext::default()));
    let code = |body: &str| read(body).map(|_| ()).map_err(|(code, _)| code);
    assert_eq!(code(r#"{"context": "#), Err(ErrorCode::ParseError));
    assert_eq!(code("[]"), Err(ErrorCode::ParseError));
    assert_eq!(
        code(r#"{"context":["u-1"]}"#),
        Err(ErrorCode::InvalidContext)
    );
    assert_eq!(
        code(r#"{"context":{"targetingKey":7}}"#),
        Err(ErrorCode::InvalidContext)
    );
    // A check fails only once the whole body has parsed: broken JSON is a parse error first.
    assert_eq!(code(r#"{"context":7,"#), Err(ErrorCode::ParseError));
}

#[test]
fn raw_value_keys_are_read_as_the_tree_reads_them() {
    let context = ofrep_context(
        br#"{"$serde_json::private::RawValue":"{\"context\":{\"targetingKey\":\"raw\"}}"}"#,
    )
    .expect("the tree's reading");
    assert_eq!(context.targeting_key.as_deref(), Some("raw"));
}
