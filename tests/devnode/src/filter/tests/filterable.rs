//! `check_filterable` against exact, wildcard and nested patterns.

use super::parse;

fn patterns(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn check(filter: &str, names: &[&str]) -> Result<(), String> {
    parse(filter).check_filterable("products", &patterns(names)).map_err(|err| err.message)
}

#[test]
fn exact_patterns() {
    assert_eq!(check("brand = x AND price > 3", &["brand", "price"]), Ok(()));
    assert_eq!(
        check("\"title\" = \"x\"", &["category", "brand", "_geo", "brand"]),
        Err("Index `products`: Attribute `title` is not filterable. Available filterable \
             attribute patterns are: `_geo`, `brand`, `category`.\n2:7 \"title\" = \"x\""
            .into())
    );
    assert_eq!(
        check("brand = x OR NOT (price > 3 AND title EXISTS)", &["brand", "price"]),
        Err("Index `products`: Attribute `title` is not filterable. Available filterable \
             attribute patterns are: `brand`, `price`.\n33:38 brand = x OR NOT (price > 3 AND \
             title EXISTS)"
            .into())
    );
    assert!(check("brandx = 1", &["brand"]).is_err());
    assert!(check("bran = 1", &["brand"]).is_err());
}

#[test]
fn no_filterable_attributes() {
    assert_eq!(
        check("title = x", &[]),
        Err("Index `products`: Attribute `title` is not filterable. This index does not have \
             configured filterable attributes.\n1:6 title = x"
            .into())
    );
    let without_index = parse("doggo=bernese").check_filterable("", &[]);
    assert_eq!(
        without_index.map_err(|err| err.message),
        Err("Attribute `doggo` is not filterable. This index does not have configured \
             filterable attributes.\n1:6 doggo=bernese"
            .into())
    );
}

#[test]
fn wildcard_patterns() {
    assert_eq!(check("anything = 1 AND _geoRadius(1, 2, 3)", &["*"]), Ok(()));
    assert_eq!(check("attr.x = 1 AND attr.y.z = 2", &["attr.*"]), Ok(()));
    assert!(check("attr = 1", &["attr.*"]).is_err());
    assert_eq!(check("user_id = 1 AND shop_id = 2", &["*_id"]), Ok(()));
    assert!(check("id_user = 1", &["*_id"]).is_err());
    assert_eq!(check("the_price_eur = 1", &["*price*"]), Ok(()));
    assert_eq!(check("sku = 1", &["s*"]), Ok(()));
    assert!(check("a_b = 1", &["a*b*c"]).is_err());
}

#[test]
fn nested_fields_of_filterable_attributes() {
    assert_eq!(check("specs.ram > 4 AND specs.ports.kind = usb", &["specs"]), Ok(()));
    assert!(check("specs = 1", &["specs.ram"]).is_err());
    assert!(check("specsx.ram = 1", &["specs"]).is_err());
}

#[test]
fn geo_rules_need_geo() {
    assert_eq!(check("_geoRadius(1, 2, 3)", &["_geo"]), Ok(()));
    assert_eq!(check("_geoBoundingBox([1, 2], [0, 1])", &["_geo"]), Ok(()));
    assert_eq!(
        check("brand = x AND _geoRadius(45.5, 2, 3)", &["brand"]),
        Err("Index `products`: Attribute `_geo` is not filterable. Available filterable \
             attribute patterns are: `brand`.\n26:30 brand = x AND _geoRadius(45.5, 2, 3)"
            .into())
    );
    // Conditions are checked before the geo rules, wherever they sit.
    let err = check("_geoRadius(1, 2, 3) AND color = red", &["brand"]);
    assert!(err.is_err_and(|message| message.contains("Attribute `color`")));
}

#[test]
fn array_form_is_checked_per_string() {
    let filter =
        crate::filter::parse_filter(&serde_json::json!(["brand = x", ["price > 1", "title = y"]]));
    let filter = filter.ok().flatten();
    let checked = filter.map(|f| f.check_filterable("products", &patterns(&["brand", "price"])));
    let message = checked.and_then(Result::err).map(|err| err.message);
    assert_eq!(
        message.as_deref(),
        Some(
            "Index `products`: Attribute `title` is not filterable. Available filterable \
            attribute patterns are: `brand`, `price`.\n1:6 title = y"
        )
    );
}
