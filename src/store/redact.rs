//! Database URLs made safe to show: the one function every place that prints a URL (status
//! documents, log lines, start-up errors) goes through, so a password cannot leak by one of
//! them forgetting a case.

/// What a hidden secret is shown as.
const MASK: &str = "****";

/// Query parameters of a Postgres URL that carry a secret (libpq's and sqlx's names).
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// The URL with every password replaced by `****`: the user-info password and the
/// `password` / `sslpassword` query parameters (any case). A URL that does not parse is not
/// shown at all, since where its secret sits cannot be known.
pub fn mask_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "<unparseable URL>".to_string();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    let secret = |name: &str| {
        SECRET_PARAMETERS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
    };
    if url.query_pairs().any(|(name, _)| secret(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) {
                    MASK.to_string()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn the_user_info_password_is_hidden_and_the_rest_kept() {
        assert_eq!(
            mask_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:****@db:5432/x"
        );
        assert_eq!(mask_url("postgres://app@db/x"), "postgres://app@db/x");
    }

    #[test]
    fn password_query_parameters_are_hidden_whatever_their_case() {
        let masked = mask_url(
            "postgres://db/x?sslmode=require&password=s3cret&SSLPassword=k3y&application_name=sy",
        );
        assert_eq!(
            masked,
            "postgres://db/x?sslmode=require&password=****&SSLPassword=****&application_name=sy"
        );
        assert!(
            !masked.contains("s3cret") && !masked.contains("k3y"),
            "{masked}"
        );
    }

    #[test]
    fn both_places_at_once_and_encoded_secrets_are_hidden() {
        let masked = mask_url("postgresql://u:p%40ss@h/d?password=a%26b");
        assert_eq!(masked, "postgresql://u:****@h/d?password=****");
    }

    #[test]
    fn a_url_that_does_not_parse_is_not_shown() {
        assert_eq!(mask_url("host=db password=s3cret"), "<unparseable URL>");
    }
}
