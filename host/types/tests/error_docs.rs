//! The error table in `docs/errors.md` lists every code Miroir answers with, with its status.

use miroir_types::ErrorCode;

#[test]
fn every_error_code_is_documented_with_its_status() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"))
        .expect("docs/errors.md exists");
    for code in ErrorCode::ALL {
        let row =
            format!("| `{}` | {} | {} |", code.name(), code.status(), code.error_type().as_str());
        assert!(doc.contains(&row), "docs/errors.md lacks the row {row}");
    }
}
