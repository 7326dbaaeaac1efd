//! A JSON extractor whose rejections use reel's error body.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::error::ApiError;

/// `axum::Json`, answering malformed bodies with a structured 400 (415 for a wrong content
/// type, 413 past the body limit), whether the JSON is broken or merely of the wrong shape.
///
/// A number with a zero fraction (`5.0`, `1e3`) is an integer, as JSON Schema defines it, so
/// an integer field accepts it.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(mut value) = axum::Json::<Value>::from_request(request, state).await?;
        integral_numbers_as_integers(&mut value);
        serde_json::from_value(value).map(ApiJson).map_err(|err| {
            ApiError::bad_request("invalid_body", format!("the JSON body does not have the expected shape: {err}"))
        })
    }
}

/// Rewrites every float with a zero fraction that fits a 64-bit integer as that integer.
fn integral_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            let Some(float) = number.as_f64().filter(|f| number.is_f64() && f.fract() == 0.0) else {
                return;
            };
            if (0.0..18_446_744_073_709_551_616.0).contains(&float) {
                *value = Value::from(float as u64);
            } else if (-9_223_372_036_854_775_808.0..0.0).contains(&float) {
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(members) => members.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn integral_floats_become_integers_and_others_stay() {
        let mut value = json!({"a": 5.0, "b": [1e3, -2.0, 0.5], "c": 7, "d": 1e300});
        integral_numbers_as_integers(&mut value);
        assert_eq!(value, json!({"a": 5, "b": [1000, -2, 0.5], "c": 7, "d": 1e300}));
        assert!(value["a"].is_u64() && value["b"][1].is_i64());
    }
}
