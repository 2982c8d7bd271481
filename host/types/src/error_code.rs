//! The closed set of error codes Miroir answers with.
//!
//! Errors a node answered are passed through untouched (see [`crate::ForwardedError`]); the codes
//! here are the ones the gateway decides on its own, either because the error is Miroir's
//! (`miroir_*`) or because Miroir answers that part of the API itself (tasks, routing, parsing a
//! write before splitting it).

use std::fmt;

/// The `type` field of a Meilisearch error object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// The request itself is wrong; retrying it unchanged fails again.
    InvalidRequest,
    /// Something went wrong inside the server.
    Internal,
    /// The request lacks valid credentials.
    Auth,
    /// The system around the server (disk, network, peers) failed.
    System,
}

impl ErrorType {
    /// The name Meilisearch uses in the `type` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Internal => "internal",
            ErrorType::Auth => "auth",
            ErrorType::System => "system",
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares [`ErrorCode`] from one table so the name, status and type of a code live on one line.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $status:literal, $ty:ident; )*) => {
        /// An error code Miroir answers with, with everything needed to render it.
        ///
        /// The enum is closed on purpose: adding a code forces every `match` over it to decide
        /// what the code means.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The `code` field of the error object, e.g. `index_not_found`.
            pub const fn name(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )* }
            }

            /// The HTTP status the error is answered with.
            pub const fn status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }

            /// The `type` field of the error object.
            pub const fn error_type(self) -> ErrorType {
                match self { $( ErrorCode::$variant => ErrorType::$ty, )* }
            }
        }
    };
}

error_codes! {
    // Miroir's own codes (SPEC section 2).
    /// The index has no primary key Miroir can resolve, so documents cannot be routed to shards.
    MiroirPrimaryKeyRequired => "miroir_primary_key_required", 400, InvalidRequest;
    /// A document carries a field starting with `_miroir_`, which Miroir reserves.
    MiroirReservedField => "miroir_reserved_field", 400, InvalidRequest;
    /// No replica group reached a write quorum for some shard.
    MiroirNoQuorum => "miroir_no_quorum", 503, System;
    /// A shard had no answering replica and the policy is `error`.
    MiroirShardUnavailable => "miroir_shard_unavailable", 503, System;
    /// An `Idempotency-Key` was reused with a different body.
    MiroirIdempotencyKeyReused => "miroir_idempotency_key_reused", 409, InvalidRequest;
    /// The admin API key for `/_miroir/*` is missing or wrong.
    MiroirInvalidAuth => "miroir_invalid_auth", 401, Auth;
    /// A plugin trapped, ran out of memory or missed its deadline.
    MiroirPluginFailed => "miroir_plugin_failed", 502, Internal;
    /// The request body is larger than `server.max_body_bytes`.
    MiroirPayloadTooLarge => "miroir_payload_too_large", 413, InvalidRequest;
    /// A multi-search (or one of its queries) ran past `multi_search.total_timeout` or
    /// `multi_search.query_timeout`.
    MiroirTimeout => "miroir_timeout", 504, System;
    /// Every request slot stayed busy for `server.queue_timeout`: the gateway sheds load.
    MiroirOverloaded => "miroir_overloaded", 503, System;
    /// The client did not send its request body within `server.request_timeout`.
    MiroirRequestTimeout => "miroir_request_timeout", 408, InvalidRequest;
    /// A write names an index uid starting with `_miroir_`, which Miroir reserves for the
    /// bookkeeping it keeps on the nodes.
    MiroirReservedIndex => "miroir_reserved_index", 400, InvalidRequest;
    /// An `Idempotency-Key` header that is empty, longer than 256 bytes or not printable ASCII.
    MiroirInvalidIdempotencyKey => "miroir_invalid_idempotency_key", 400, InvalidRequest;
    /// A node no longer has the task Miroir mapped (its task history was reset, e.g. it
    /// restarted without its data): the error of a task settled as failed, never an answer.
    MiroirTaskLost => "miroir_task_lost", 500, System;
    /// A fleet change names a node the fleet does not have.
    MiroirNodeNotFound => "miroir_node_not_found", 404, InvalidRequest;
    /// A fleet change conflicts with the fleet: the id exists (ids are never reused), the node
    /// is in the wrong state, or a rebalance is still running.
    MiroirFleetConflict => "miroir_fleet_conflict", 409, InvalidRequest;
    /// A fleet change request is malformed (missing id or address, invalid id).
    MiroirInvalidNode => "miroir_invalid_node", 400, InvalidRequest;
    /// A route of the Meilisearch API that Miroir does not serve over shards (chats, update by
    /// function, export...) while the nodes would serve it: listed in `docs/compatibility.md`.
    MiroirNotSupported => "miroir_not_supported", 501, InvalidRequest;
    /// A first-party feature on by default whose component was not found at start (its route
    /// answers this until the component is installed, or the feature is turned off).
    MiroirPluginUnavailable => "miroir_plugin_unavailable", 503, System;
    /// A route of an optional feature whose section is off (`cdc.enabled`, `shadow.enabled`).
    MiroirFeatureDisabled => "miroir_feature_disabled", 404, InvalidRequest;
    /// A search parameter of an optional feature whose section is off: `vector` or `hybrid`
    /// (and `/similar`) while `vector_search.enabled` is `false`.
    MiroirFeatureNotEnabled => "miroir_feature_not_enabled", 400, InvalidRequest;
    /// A query parameter of a `/_miroir/` route is missing or malformed (`GET /_miroir/changes`:
    /// `index`, `since`, `limit`, `timeout`; `GET /_miroir/shadow/diff`: `differs`, `limit`).
    MiroirInvalidQuery => "miroir_invalid_query", 400, InvalidRequest;
    /// A client of the search page made more requests than its bucket allows
    /// (`search_ui.rate_limit`); the answer carries `Retry-After`.
    MiroirRateLimited => "miroir_rate_limited", 429, InvalidRequest;

    // Meilisearch codes the gateway produces itself.
    /// The index does not exist.
    IndexNotFound => "index_not_found", 404, InvalidRequest;
    /// An index with this uid already exists.
    IndexAlreadyExists => "index_already_exists", 409, InvalidRequest;
    /// The index uid is malformed.
    InvalidIndexUid => "invalid_index_uid", 400, InvalidRequest;
    /// The index uid is missing from the request.
    MissingIndexUid => "missing_index_uid", 400, InvalidRequest;
    /// The primary key given for the index is invalid.
    InvalidIndexPrimaryKey => "invalid_index_primary_key", 400, InvalidRequest;
    /// Several fields could be the primary key and none was chosen.
    IndexPrimaryKeyMultipleCandidatesFound => "index_primary_key_multiple_candidates_found", 400, InvalidRequest;
    /// No field could be inferred as the primary key.
    IndexPrimaryKeyNoCandidateFound => "index_primary_key_no_candidate_found", 400, InvalidRequest;
    /// The index already has a different primary key.
    IndexPrimaryKeyAlreadyExists => "index_primary_key_already_exists", 400, InvalidRequest;
    /// The document does not exist.
    DocumentNotFound => "document_not_found", 404, InvalidRequest;
    /// A document id is malformed.
    InvalidDocumentId => "invalid_document_id", 400, InvalidRequest;
    /// A document lacks its primary key.
    MissingDocumentId => "missing_document_id", 400, InvalidRequest;
    /// The `filter` of a document browse or delete is invalid.
    InvalidDocumentFilter => "invalid_document_filter", 400, InvalidRequest;
    /// The `offset` of a document browse is invalid.
    InvalidDocumentOffset => "invalid_document_offset", 400, InvalidRequest;
    /// The `limit` of a document browse is invalid.
    InvalidDocumentLimit => "invalid_document_limit", 400, InvalidRequest;
    /// The `fields` of a document browse are invalid.
    InvalidDocumentFields => "invalid_document_fields", 400, InvalidRequest;
    /// The task does not exist.
    TaskNotFound => "task_not_found", 404, InvalidRequest;
    /// A task filter's `uids` is invalid.
    InvalidTaskUids => "invalid_task_uids", 400, InvalidRequest;
    /// A task filter's `statuses` is invalid.
    InvalidTaskStatuses => "invalid_task_statuses", 400, InvalidRequest;
    /// A task filter's `types` is invalid.
    InvalidTaskTypes => "invalid_task_types", 400, InvalidRequest;
    /// A task filter's `canceledBy` is invalid.
    InvalidTaskCanceledBy => "invalid_task_canceled_by", 400, InvalidRequest;
    /// A task filter's `batchUids` is invalid.
    InvalidTaskBatchUids => "invalid_task_batch_uids", 400, InvalidRequest;
    /// A batch uid is invalid.
    InvalidBatchUids => "invalid_batch_uids", 400, InvalidRequest;
    /// The batch does not exist.
    BatchNotFound => "batch_not_found", 404, InvalidRequest;
    /// A webhook's `url` is missing or invalid.
    InvalidWebhookUrl => "invalid_webhook_url", 400, InvalidRequest;
    /// A webhook's `headers` are invalid.
    InvalidWebhookHeaders => "invalid_webhook_headers", 400, InvalidRequest;
    /// A webhook uuid is invalid.
    InvalidWebhookUuid => "invalid_webhook_uuid", 400, InvalidRequest;
    /// The webhook does not exist.
    WebhookNotFound => "webhook_not_found", 404, InvalidRequest;
    /// The route needs an experimental feature that is not enabled.
    FeatureNotEnabled => "feature_not_enabled", 400, InvalidRequest;
    /// The `limit` of a task listing is invalid.
    InvalidTaskLimit => "invalid_task_limit", 400, InvalidRequest;
    /// The `from` of a task listing is invalid.
    InvalidTaskFrom => "invalid_task_from", 400, InvalidRequest;
    /// The `reverse` of a task listing is invalid.
    InvalidTaskReverse => "invalid_task_reverse", 400, InvalidRequest;
    /// A task filter's `beforeEnqueuedAt` is invalid.
    InvalidTaskBeforeEnqueuedAt => "invalid_task_before_enqueued_at", 400, InvalidRequest;
    /// A task filter's `afterEnqueuedAt` is invalid.
    InvalidTaskAfterEnqueuedAt => "invalid_task_after_enqueued_at", 400, InvalidRequest;
    /// A task filter's `beforeStartedAt` is invalid.
    InvalidTaskBeforeStartedAt => "invalid_task_before_started_at", 400, InvalidRequest;
    /// A task filter's `afterStartedAt` is invalid.
    InvalidTaskAfterStartedAt => "invalid_task_after_started_at", 400, InvalidRequest;
    /// A task filter's `beforeFinishedAt` is invalid.
    InvalidTaskBeforeFinishedAt => "invalid_task_before_finished_at", 400, InvalidRequest;
    /// A task filter's `afterFinishedAt` is invalid.
    InvalidTaskAfterFinishedAt => "invalid_task_after_finished_at", 400, InvalidRequest;
    /// Task cancelation or deletion was asked for without any filter.
    MissingTaskFilters => "missing_task_filters", 400, InvalidRequest;
    /// The request body is not valid for its content type.
    MalformedPayload => "malformed_payload", 400, InvalidRequest;
    /// The request needs a body and has none.
    MissingPayload => "missing_payload", 400, InvalidRequest;
    /// The request body exceeds the payload limit (Meilisearch's own name for it).
    PayloadTooLarge => "payload_too_large", 413, InvalidRequest;
    /// The `Content-Type` is not one the route accepts.
    InvalidContentType => "invalid_content_type", 415, InvalidRequest;
    /// The route needs a `Content-Type` and none was sent.
    MissingContentType => "missing_content_type", 415, InvalidRequest;
    /// No `Authorization` header while a master key is set.
    MissingAuthorizationHeader => "missing_authorization_header", 401, Auth;
    /// The API key or tenant token does not grant this request.
    InvalidApiKey => "invalid_api_key", 403, Auth;
    /// The API key does not exist.
    ApiKeyNotFound => "api_key_not_found", 404, InvalidRequest;
    /// The search `filter` is invalid.
    InvalidSearchFilter => "invalid_search_filter", 400, InvalidRequest;
    /// The search `sort` is invalid.
    InvalidSearchSort => "invalid_search_sort", 400, InvalidRequest;
    /// The search `offset` is invalid.
    InvalidSearchOffset => "invalid_search_offset", 400, InvalidRequest;
    /// The search `limit` is invalid.
    InvalidSearchLimit => "invalid_search_limit", 400, InvalidRequest;
    /// The search `page` is invalid.
    InvalidSearchPage => "invalid_search_page", 400, InvalidRequest;
    /// The search `hitsPerPage` is invalid.
    InvalidSearchHitsPerPage => "invalid_search_hits_per_page", 400, InvalidRequest;
    /// The search `facets` are invalid.
    InvalidSearchFacets => "invalid_search_facets", 400, InvalidRequest;
    /// The `indexes` of a swap request are invalid.
    InvalidSwapIndexes => "invalid_swap_indexes", 400, InvalidRequest;
    /// The same index appears twice in a swap request.
    InvalidSwapDuplicateIndexFound => "invalid_swap_duplicate_index_found", 400, InvalidRequest;
    /// Too many searches are queued.
    TooManySearchRequests => "too_many_search_requests", 503, System;
    /// A request Miroir cannot make sense of (Meilisearch's catch-all, e.g. an unknown parameter).
    BadRequest => "bad_request", 400, InvalidRequest;
    /// No route matches the request's method and path.
    ///
    /// Meilisearch answers unknown routes with a bare 404; Miroir keeps the status and adds an
    /// error object so a client can tell what went wrong.
    NotFound => "not_found", 404, InvalidRequest;
    /// An unexpected failure inside Miroir; details go to the log, not the client.
    Internal => "internal", 500, Internal;
}

impl ErrorCode {
    /// The documentation link of the error object: `https://docs.meilisearch.com/errors#<code>`.
    pub fn link(self) -> String {
        format!("https://docs.meilisearch.com/errors#{}", self.name())
    }

    /// The code whose `code` name is `name`, if Miroir has one by that name.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|code| code.name() == name)
    }

    /// Whether the code is one of Miroir's own (`miroir_*`) rather than a Meilisearch code.
    pub fn is_miroir_specific(self) -> bool {
        self.name().starts_with("miroir_")
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status, name and type of every code, written out so a change to the table is deliberate.
    const EXPECTED: &[(ErrorCode, u16, &str, &str)] = &[
        (
            ErrorCode::MiroirPrimaryKeyRequired,
            400,
            "miroir_primary_key_required",
            "invalid_request",
        ),
        (ErrorCode::MiroirReservedField, 400, "miroir_reserved_field", "invalid_request"),
        (ErrorCode::MiroirNoQuorum, 503, "miroir_no_quorum", "system"),
        (ErrorCode::MiroirShardUnavailable, 503, "miroir_shard_unavailable", "system"),
        (
            ErrorCode::MiroirIdempotencyKeyReused,
            409,
            "miroir_idempotency_key_reused",
            "invalid_request",
        ),
        (ErrorCode::MiroirInvalidAuth, 401, "miroir_invalid_auth", "auth"),
        (ErrorCode::MiroirPluginFailed, 502, "miroir_plugin_failed", "internal"),
        (ErrorCode::MiroirPayloadTooLarge, 413, "miroir_payload_too_large", "invalid_request"),
        (ErrorCode::MiroirTimeout, 504, "miroir_timeout", "system"),
        (ErrorCode::MiroirOverloaded, 503, "miroir_overloaded", "system"),
        (ErrorCode::MiroirRequestTimeout, 408, "miroir_request_timeout", "invalid_request"),
        (ErrorCode::MiroirReservedIndex, 400, "miroir_reserved_index", "invalid_request"),
        (
            ErrorCode::MiroirInvalidIdempotencyKey,
            400,
            "miroir_invalid_idempotency_key",
            "invalid_request",
        ),
        (ErrorCode::MiroirTaskLost, 500, "miroir_task_lost", "system"),
        (ErrorCode::MiroirNodeNotFound, 404, "miroir_node_not_found", "invalid_request"),
        (ErrorCode::MiroirFleetConflict, 409, "miroir_fleet_conflict", "invalid_request"),
        (ErrorCode::MiroirInvalidNode, 400, "miroir_invalid_node", "invalid_request"),
        (ErrorCode::MiroirNotSupported, 501, "miroir_not_supported", "invalid_request"),
        (ErrorCode::MiroirPluginUnavailable, 503, "miroir_plugin_unavailable", "system"),
        (ErrorCode::MiroirFeatureDisabled, 404, "miroir_feature_disabled", "invalid_request"),
        (ErrorCode::MiroirFeatureNotEnabled, 400, "miroir_feature_not_enabled", "invalid_request"),
        (ErrorCode::MiroirInvalidQuery, 400, "miroir_invalid_query", "invalid_request"),
        (ErrorCode::MiroirRateLimited, 429, "miroir_rate_limited", "invalid_request"),
        (ErrorCode::IndexNotFound, 404, "index_not_found", "invalid_request"),
        (ErrorCode::IndexAlreadyExists, 409, "index_already_exists", "invalid_request"),
        (ErrorCode::InvalidIndexUid, 400, "invalid_index_uid", "invalid_request"),
        (ErrorCode::MissingIndexUid, 400, "missing_index_uid", "invalid_request"),
        (ErrorCode::InvalidIndexPrimaryKey, 400, "invalid_index_primary_key", "invalid_request"),
        (
            ErrorCode::IndexPrimaryKeyMultipleCandidatesFound,
            400,
            "index_primary_key_multiple_candidates_found",
            "invalid_request",
        ),
        (
            ErrorCode::IndexPrimaryKeyNoCandidateFound,
            400,
            "index_primary_key_no_candidate_found",
            "invalid_request",
        ),
        (
            ErrorCode::IndexPrimaryKeyAlreadyExists,
            400,
            "index_primary_key_already_exists",
            "invalid_request",
        ),
        (ErrorCode::DocumentNotFound, 404, "document_not_found", "invalid_request"),
        (ErrorCode::InvalidDocumentId, 400, "invalid_document_id", "invalid_request"),
        (ErrorCode::MissingDocumentId, 400, "missing_document_id", "invalid_request"),
        (ErrorCode::InvalidDocumentFilter, 400, "invalid_document_filter", "invalid_request"),
        (ErrorCode::InvalidDocumentOffset, 400, "invalid_document_offset", "invalid_request"),
        (ErrorCode::InvalidDocumentLimit, 400, "invalid_document_limit", "invalid_request"),
        (ErrorCode::InvalidDocumentFields, 400, "invalid_document_fields", "invalid_request"),
        (ErrorCode::TaskNotFound, 404, "task_not_found", "invalid_request"),
        (ErrorCode::InvalidTaskUids, 400, "invalid_task_uids", "invalid_request"),
        (ErrorCode::InvalidTaskStatuses, 400, "invalid_task_statuses", "invalid_request"),
        (ErrorCode::InvalidTaskTypes, 400, "invalid_task_types", "invalid_request"),
        (ErrorCode::InvalidTaskCanceledBy, 400, "invalid_task_canceled_by", "invalid_request"),
        (ErrorCode::InvalidTaskBatchUids, 400, "invalid_task_batch_uids", "invalid_request"),
        (ErrorCode::InvalidBatchUids, 400, "invalid_batch_uids", "invalid_request"),
        (ErrorCode::BatchNotFound, 404, "batch_not_found", "invalid_request"),
        (ErrorCode::InvalidWebhookUrl, 400, "invalid_webhook_url", "invalid_request"),
        (ErrorCode::InvalidWebhookHeaders, 400, "invalid_webhook_headers", "invalid_request"),
        (ErrorCode::InvalidWebhookUuid, 400, "invalid_webhook_uuid", "invalid_request"),
        (ErrorCode::WebhookNotFound, 404, "webhook_not_found", "invalid_request"),
        (ErrorCode::FeatureNotEnabled, 400, "feature_not_enabled", "invalid_request"),
        (ErrorCode::InvalidTaskLimit, 400, "invalid_task_limit", "invalid_request"),
        (ErrorCode::InvalidTaskFrom, 400, "invalid_task_from", "invalid_request"),
        (ErrorCode::InvalidTaskReverse, 400, "invalid_task_reverse", "invalid_request"),
        (
            ErrorCode::InvalidTaskBeforeEnqueuedAt,
            400,
            "invalid_task_before_enqueued_at",
            "invalid_request",
        ),
        (
            ErrorCode::InvalidTaskAfterEnqueuedAt,
            400,
            "invalid_task_after_enqueued_at",
            "invalid_request",
        ),
        (
            ErrorCode::InvalidTaskBeforeStartedAt,
            400,
            "invalid_task_before_started_at",
            "invalid_request",
        ),
        (
            ErrorCode::InvalidTaskAfterStartedAt,
            400,
            "invalid_task_after_started_at",
            "invalid_request",
        ),
        (
            ErrorCode::InvalidTaskBeforeFinishedAt,
            400,
            "invalid_task_before_finished_at",
            "invalid_request",
        ),
        (
            ErrorCode::InvalidTaskAfterFinishedAt,
            400,
            "invalid_task_after_finished_at",
            "invalid_request",
        ),
        (ErrorCode::MissingTaskFilters, 400, "missing_task_filters", "invalid_request"),
        (ErrorCode::MalformedPayload, 400, "malformed_payload", "invalid_request"),
        (ErrorCode::MissingPayload, 400, "missing_payload", "invalid_request"),
        (ErrorCode::PayloadTooLarge, 413, "payload_too_large", "invalid_request"),
        (ErrorCode::InvalidContentType, 415, "invalid_content_type", "invalid_request"),
        (ErrorCode::MissingContentType, 415, "missing_content_type", "invalid_request"),
        (ErrorCode::MissingAuthorizationHeader, 401, "missing_authorization_header", "auth"),
        (ErrorCode::InvalidApiKey, 403, "invalid_api_key", "auth"),
        (ErrorCode::ApiKeyNotFound, 404, "api_key_not_found", "invalid_request"),
        (ErrorCode::InvalidSearchFilter, 400, "invalid_search_filter", "invalid_request"),
        (ErrorCode::InvalidSearchSort, 400, "invalid_search_sort", "invalid_request"),
        (ErrorCode::InvalidSearchOffset, 400, "invalid_search_offset", "invalid_request"),
        (ErrorCode::InvalidSearchLimit, 400, "invalid_search_limit", "invalid_request"),
        (ErrorCode::InvalidSearchPage, 400, "invalid_search_page", "invalid_request"),
        (
            ErrorCode::InvalidSearchHitsPerPage,
            400,
            "invalid_search_hits_per_page",
            "invalid_request",
        ),
        (ErrorCode::InvalidSearchFacets, 400, "invalid_search_facets", "invalid_request"),
        (ErrorCode::InvalidSwapIndexes, 400, "invalid_swap_indexes", "invalid_request"),
        (
            ErrorCode::InvalidSwapDuplicateIndexFound,
            400,
            "invalid_swap_duplicate_index_found",
            "invalid_request",
        ),
        (ErrorCode::TooManySearchRequests, 503, "too_many_search_requests", "system"),
        (ErrorCode::BadRequest, 400, "bad_request", "invalid_request"),
        (ErrorCode::NotFound, 404, "not_found", "invalid_request"),
        (ErrorCode::Internal, 500, "internal", "internal"),
    ];

    #[test]
    fn every_code_has_the_expected_status_name_and_type() {
        assert_eq!(EXPECTED.len(), ErrorCode::ALL.len(), "a code is missing from EXPECTED");
        for &(code, status, name, ty) in EXPECTED {
            assert_eq!(code.status(), status, "status of {name}");
            assert_eq!(code.name(), name);
            assert_eq!(code.error_type().as_str(), ty, "type of {name}");
            assert_eq!(code.link(), format!("https://docs.meilisearch.com/errors#{name}"));
        }
    }

    #[test]
    fn every_code_is_listed_once_and_found_by_name() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(ErrorCode::from_name(code.name()), Some(*code));
            assert!(
                !ErrorCode::ALL[i + 1..].iter().any(|other| other.name() == code.name()),
                "{code} listed twice"
            );
        }
        assert_eq!(ErrorCode::from_name("no_such_code"), None);
    }

    #[test]
    fn miroir_codes_are_the_ones_prefixed_miroir() {
        let miroir: Vec<_> = ErrorCode::ALL.iter().filter(|c| c.is_miroir_specific()).collect();
        assert_eq!(miroir.len(), 23);
        assert!(!ErrorCode::IndexNotFound.is_miroir_specific());
    }

    #[test]
    fn statuses_are_client_or_server_errors() {
        for code in ErrorCode::ALL {
            assert!((400..600).contains(&code.status()), "{code}");
        }
    }
}
