//! Unit tests of the search API: parameters, placeholder search, and score independence.
