//! Query parameters several routes share.

use serde::Deserialize;

/// `?tag=`: only the achievements carrying this tag.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagQuery {
    /// Only achievements carrying this tag (1 to 64 ASCII letters, digits and `_.:-`).
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub tag: Option<String>,
}
