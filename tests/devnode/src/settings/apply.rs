//! Task-time application of a settings patch: absent fields unchanged, null resets to the
//! default, the object settings merge field by field.

use std::collections::BTreeSet;

use serde_json::Value;

use super::de::at_key;
use super::embedders::apply_embedders;
use super::validate::{code_for, min_word_size_error, normalize_field, validate_patch};
use super::{Faceting, MinWordSizeForTypos, Settings, TypoTolerance};
use crate::error::ApiError;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|items| items.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn string_set(v: &Value) -> BTreeSet<String> {
    strings(v).into_iter().collect()
}

fn usize_of(v: &Value, default: usize) -> usize {
    v.as_u64().map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

fn u8_of(v: &Value, default: u8) -> u8 {
    v.as_u64().and_then(|n| u8::try_from(n).ok()).unwrap_or(default)
}

impl Settings {
    /// Apply a settings patch (validated again, so any payload is safe): fields absent are
    /// unchanged, null resets a field to its default, `typoTolerance`, `faceting`, `pagination`
    /// and `embedders` merge field by field. Errors Meilisearch only detects while processing
    /// the task (`oneTypo` above `twoTypos` once merged, an embedder missing a field its source
    /// requires, a `userProvided` embedder changing dimensions) leave the settings unchanged.
    pub fn apply_patch(&mut self, patch: &Value) -> Result<(), ApiError> {
        let patch = validate_patch(patch)?;
        let mut next = self.clone();
        if let Some(fields) = patch.as_object() {
            for (field, value) in fields {
                // Normalizing again puts nested objects back in Meilisearch's field order.
                let value = normalize_field(field, value, &at_key("", field))?;
                next.apply_field(field, &value)?;
            }
        }
        *self = next;
        Ok(())
    }

    fn apply_field(&mut self, field: &str, v: &Value) -> Result<(), ApiError> {
        let defaults = Settings::default();
        if v.is_null() {
            self.reset_field(field, defaults);
            return Ok(());
        }
        match field {
            "displayedAttributes" => self.displayed_attributes = strings(v),
            "searchableAttributes" => self.searchable_attributes = strings(v),
            "filterableAttributes" => {
                self.filterable_attributes = v.as_array().cloned().unwrap_or_default()
            }
            "sortableAttributes" => self.sortable_attributes = string_set(v),
            "rankingRules" => self.ranking_rules = strings(v),
            "stopWords" => self.stop_words = string_set(v),
            "nonSeparatorTokens" => self.non_separator_tokens = string_set(v),
            "separatorTokens" => self.separator_tokens = string_set(v),
            "dictionary" => self.dictionary = string_set(v),
            "synonyms" => {
                self.synonyms = v
                    .as_object()
                    .map(|m| m.iter().map(|(k, words)| (k.clone(), strings(words))).collect())
                    .unwrap_or_default()
            }
            "distinctAttribute" => self.distinct_attribute = v.as_str().map(String::from),
            "proximityPrecision" => {
                self.proximity_precision = v.as_str().unwrap_or("byWord").to_string()
            }
            "typoTolerance" => self.merge_typo_tolerance(v)?,
            "faceting" => self.merge_faceting(v),
            "pagination" => {
                if let Some(hits) = v.get("maxTotalHits") {
                    self.pagination.max_total_hits =
                        usize_of(hits, defaults.pagination.max_total_hits);
                }
            }
            "embedders" => self.embedders = apply_embedders(&self.embedders, v)?,
            "searchCutoffMs" => self.search_cutoff_ms = v.as_u64(),
            "localizedAttributes" => self.localized_attributes = Some(v.clone()),
            "facetSearch" => self.facet_search = v.as_bool().unwrap_or(true),
            "prefixSearch" => self.prefix_search = v.as_str().unwrap_or("indexingTime").to_string(),
            _ => return Err(ApiError::internal(format!("`{field}` is not a settings field"))),
        }
        Ok(())
    }

    fn reset_field(&mut self, field: &str, d: Settings) {
        match field {
            "displayedAttributes" => self.displayed_attributes = d.displayed_attributes,
            "searchableAttributes" => self.searchable_attributes = d.searchable_attributes,
            "filterableAttributes" => self.filterable_attributes = d.filterable_attributes,
            "sortableAttributes" => self.sortable_attributes = d.sortable_attributes,
            "rankingRules" => self.ranking_rules = d.ranking_rules,
            "stopWords" => self.stop_words = d.stop_words,
            "nonSeparatorTokens" => self.non_separator_tokens = d.non_separator_tokens,
            "separatorTokens" => self.separator_tokens = d.separator_tokens,
            "dictionary" => self.dictionary = d.dictionary,
            "synonyms" => self.synonyms = d.synonyms,
            "distinctAttribute" => self.distinct_attribute = d.distinct_attribute,
            "proximityPrecision" => self.proximity_precision = d.proximity_precision,
            "typoTolerance" => self.typo_tolerance = d.typo_tolerance,
            "faceting" => self.faceting = d.faceting,
            "pagination" => self.pagination = d.pagination,
            "embedders" => self.embedders = d.embedders,
            "searchCutoffMs" => self.search_cutoff_ms = d.search_cutoff_ms,
            "localizedAttributes" => self.localized_attributes = d.localized_attributes,
            "facetSearch" => self.facet_search = d.facet_search,
            "prefixSearch" => self.prefix_search = d.prefix_search,
            _ => {}
        }
    }

    fn merge_typo_tolerance(&mut self, v: &Value) -> Result<(), ApiError> {
        let d: TypoTolerance = Settings::default().typo_tolerance;
        let typo = &mut self.typo_tolerance;
        if let Some(enabled) = v.get("enabled") {
            typo.enabled = enabled.as_bool().unwrap_or(d.enabled);
        }
        if let Some(sizes) = v.get("minWordSizeForTypos") {
            let dm: MinWordSizeForTypos = d.min_word_size_for_typos;
            let current = &mut typo.min_word_size_for_typos;
            if sizes.is_null() {
                *current = dm;
            } else {
                if let Some(one) = sizes.get("oneTypo") {
                    current.one_typo = u8_of(one, dm.one_typo);
                }
                if let Some(two) = sizes.get("twoTypos") {
                    current.two_typos = u8_of(two, dm.two_typos);
                }
            }
        }
        if let Some(words) = v.get("disableOnWords") {
            typo.disable_on_words = string_set(words);
        }
        if let Some(attributes) = v.get("disableOnAttributes") {
            typo.disable_on_attributes = string_set(attributes);
        }
        if let Some(numbers) = v.get("disableOnNumbers") {
            typo.disable_on_numbers = numbers.as_bool().unwrap_or(d.disable_on_numbers);
        }
        let sizes = &typo.min_word_size_for_typos;
        if sizes.one_typo > sizes.two_typos {
            return Err(min_word_size_error(
                &code_for("typoTolerance"),
                sizes.one_typo.into(),
                sizes.two_typos.into(),
            ));
        }
        Ok(())
    }

    fn merge_faceting(&mut self, v: &Value) {
        let d: Faceting = Settings::default().faceting;
        if let Some(max) = v.get("maxValuesPerFacet") {
            self.faceting.max_values_per_facet = usize_of(max, d.max_values_per_facet);
        }
        match v.get("sortFacetValuesBy") {
            Some(Value::Object(sorts)) => {
                for (facet, sort) in sorts {
                    if let Some(sort) = sort.as_str() {
                        self.faceting.sort_facet_values_by.insert(facet.clone(), sort.to_string());
                    }
                }
            }
            Some(_) => self.faceting.sort_facet_values_by = d.sort_facet_values_by,
            None => {}
        }
    }
}
