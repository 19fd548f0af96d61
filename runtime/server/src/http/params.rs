//! A route's query string read into its parameters, or refused with a 400 that names the parameter at fault
//! and what is wrong with it: a value that does not parse (`horizon=x`), a parameter the route does not take
//! (with the ones it takes), a required one missing.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::guard::bad;

/// The query string as `T` (a struct with `#[serde(deny_unknown_fields)]`, so that a misspelt parameter is
/// refused rather than ignored).
#[derive(Debug)]
pub struct Params<T>(pub T);

/// What axum puts before the deserializer's own words, which already name the parameter.
const PREFIX: &str = "Failed to deserialize query string: ";

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(params)) => Ok(Params(params)),
            Err(rejection) => {
                let text = rejection.body_text();
                let why = text.strip_prefix(PREFIX).unwrap_or(&text);
                Err(bad(format!("bad query parameter: {why}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Request, StatusCode};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Asked {
        horizon: Option<usize>,
        #[allow(dead_code)]
        keys: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Needed {
        #[allow(dead_code)]
        topic: String,
    }

    async fn read<T: DeserializeOwned>(query: &str) -> Result<T, String> {
        let (mut parts, ()) = Request::get(format!("/x?{query}"))
            .body(())
            .unwrap()
            .into_parts();
        match Params::<T>::from_request_parts(&mut parts, &()).await {
            Ok(Params(params)) => Ok(params),
            Err(response) => {
                assert_eq!(response.status(), StatusCode::BAD_REQUEST);
                let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                    .await
                    .unwrap();
                Err(String::from_utf8(body.to_vec()).unwrap())
            }
        }
    }

    #[tokio::test]
    async fn a_refusal_names_the_parameter_at_fault() {
        assert_eq!(
            read::<Asked>("horizon=3&keys=Rust").await.unwrap().horizon,
            Some(3)
        );
        let malformed = read::<Asked>("horizon=x").await.unwrap_err();
        assert!(
            malformed.starts_with("bad query parameter: horizon"),
            "{malformed}"
        );
        let unknown = read::<Asked>("color=blue").await.unwrap_err();
        assert!(
            unknown.contains("`color`")
                && unknown.contains("`horizon`")
                && unknown.contains("`keys`"),
            "{unknown}"
        );
        let missing = read::<Needed>("").await.unwrap_err();
        assert!(missing.contains("`topic`"), "{missing}");
    }
}
