//! The `filter` parameter: parsed and checked by [`crate::filter`], errors answered as
//! `invalid_search_filter`.

use serde_json::Value;

use crate::error::ApiError;
use crate::filter::{self, Filter, FilterError};
use crate::index::{Document, Index};

fn to_api(err: FilterError) -> ApiError {
    ApiError::new("invalid_search_filter", err.message)
}

/// A parsed filter ready to test documents; `None` lets every document through.
pub struct DocFilter(Option<Filter>);

impl DocFilter {
    /// Parse `value` and check that it names only filterable attributes of `index`.
    pub fn new(index: &Index, value: Option<&Value>) -> Result<Self, ApiError> {
        let Some(value) = value else { return Ok(Self(None)) };
        let parsed = filter::parse_filter(value).map_err(to_api)?;
        if let Some(f) = &parsed {
            f.check_filterable(&index.uid, &index.settings.filterable_patterns())
                .map_err(to_api)?;
        }
        Ok(Self(parsed))
    }

    /// Whether `doc` passes the filter.
    pub fn matches(&self, doc: &Document) -> bool {
        self.0.as_ref().is_none_or(|f| f.matches(doc))
    }
}
